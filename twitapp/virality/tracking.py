"""The optional copy of each virality training run in MLflow, when ``MLFLOW_TRACKING_URI`` is set.

The registry in the database is what the service reads; MLflow is a copy for people who track runs
there. MLflow is an optional dependency (the Pipfile's mlflow category), imported only when a run is
logged, so the app works without it.
"""

from __future__ import annotations

import logging
import os

from twitapp.models import ModelVersion

log = logging.getLogger(__name__)

MLFLOW_EXPERIMENT = "hypotweet-virality"


def log_to_mlflow(row: ModelVersion, trained_on: int) -> None:
    """With ``MLFLOW_TRACKING_URI`` set (and MLflow installed), record the run there too.

    A tracking server that is down is logged and does not undo the training.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return
    try:
        import mlflow  # optional: only people who track runs install it
    except ImportError:
        log.warning("MLFLOW_TRACKING_URI is set but MLflow is not installed (pipenv install mlflow-skinny)")
        return
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(MLFLOW_EXPERIMENT)
        with mlflow.start_run(run_name=f"virality-{row.id}"):
            mlflow.log_params(
                {**row.params, "version": row.id, "trained_on": trained_on, "margin": row.decision["margin"]}
            )
            mlflow.log_metrics({k: v for k, v in row.metrics.items() if isinstance(v, int | float)})
            champion = row.decision.get("champion")
            if champion and champion.get("roc_auc") is not None:
                mlflow.log_metric("champion_roc_auc", champion["roc_auc"])
            mlflow.set_tags({"status": row.status, "promoted": str(row.decision["promoted"]).lower()})
            mlflow.log_dict(row.decision, "decision.json")
    except Exception:
        log.exception("virality model %s could not be logged to MLflow at %s", row.id, uri)
