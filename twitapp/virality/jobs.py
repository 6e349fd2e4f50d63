"""The virality capability's jobs: train a challenger and let it contest the champion, and the refresh
loop (newer posts for every account, then a training run)."""

from __future__ import annotations

from twitapp.ingest.jobs import update_all
from twitapp.jobs import Reporter, handler
from twitapp.virality import model as virality


@handler("virality-train", title="Training a virality model")
def _virality_train(params: dict, report: Reporter) -> tuple[str, dict]:
    """Train a virality challenger on the stored posts; promote it only if it beats the champion."""
    row = virality.train_and_compare(
        threshold=None if params.get("threshold") is None else int(params["threshold"]),
        margin=float(params.get("margin", virality.MARGIN)),
        progress=report.progress,
    )
    verdict = "promoted: it is now in service" if row.decision["promoted"] else "not promoted"
    message = (
        f"Trained virality model {row.id}, for more than {row.params['threshold']} likes "
        f"(ROC AUC {row.metrics['roc_auc']} on the {row.metrics['rows']:,} newest "
        f"posts), {verdict}. {row.decision['reason']}"
    )
    return message, {"model": row.id, "status": row.status, "metrics": row.metrics, "decision": row.decision}


@handler("refresh", writes="all", title="Refreshing every account and the model")
def _refresh(params: dict, report: Reporter) -> tuple[str, dict]:
    """The whole loop for a scheduler: newer posts (and fresh likes) for every account, retrain, compare, promote.

    A model that cannot be trained (too few fresh posts, say) is not a failure of the loop: the champion
    stays in service and the message says why nothing changed.
    """
    fetched_message, fetched = update_all(params, report)
    if not fetched["updated"]:
        fetched_message += " Retraining on the stored posts."
    try:
        trained_message, trained = _virality_train(params, report)
    except virality.ViralityError as exc:
        champion = virality.champion_row()
        kept = f" Model {champion.id} stays in service." if champion else " No model is in service yet."
        return f"{fetched_message} No new model: {exc}{kept}", {"fetched": fetched, "trained": None}
    return f"{fetched_message} {trained_message}", {"fetched": fetched, "trained": trained}
