"""The style capability's job: train the model that writes like one account."""

from __future__ import annotations

from twitapp.jobs import Reporter, handler
from twitapp.style import model as generate


@handler(generate.TRAIN_JOB, title="Training the style model")
def _style_train(params: dict, report: Reporter) -> tuple[str, dict]:
    """Train the model that writes like one account, and put it in service."""
    row = generate.train_for(params["username"], progress=report.progress, engine=params.get("engine", "kneser-ney"))
    handle = row.params["username"]
    shape = f"order {row.params['order']}" if row.params["engine"] == "kneser-ney" else "an LSTM"
    message = (
        f"Trained a style model of @{handle} on {row.metrics['posts']:,} posts: {shape}, "
        f"{row.metrics['held_out_bits_per_char']:.2f} bits per character on its newest posts."
    )
    if generate.better_than_chance(row) is False:
        message += (
            f" That is no better than chance: guessing each character at random scores "
            f"{row.metrics['chance_bits_per_char']:.2f}."
        )
    return message, {"model": row.id, "metrics": row.metrics, "params": row.params}
