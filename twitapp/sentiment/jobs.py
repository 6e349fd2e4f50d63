"""The sentiment capability's job: train a model on labelled files and put it in service."""

from __future__ import annotations

import hashlib
from pathlib import Path

from twitapp.jobs import Reporter, handler, uploads
from twitapp.sentiment import labelled
from twitapp.sentiment import model as sentiment
from twitapp.sources import archive


@handler("sentiment-train", title="Training a sentiment model")
def _sentiment_train(params: dict, report: Reporter) -> tuple[str, dict]:
    """Train a sentiment model on labelled files (paths, or files sent through the page) and put it in service."""
    rows, files = [], []
    with uploads.inputs(params) as inputs:
        # Labelled files are read whole: the model learns from every row at once.
        read = [(Path(p).name, archive.read_file_bytes(p)) for p in params.get("paths", [])]
        for name, opener in inputs.files:
            with opener() as stream:
                read.append((name, stream.read()))
        for name, raw in read:
            parsed = labelled.parse_labelled(raw, name)
            files.append({"file": name, "rows": len(parsed), "sha256": hashlib.sha256(raw).hexdigest()})
            rows += parsed
        del read
        rows, dropped = labelled.deduplicate(rows)
        model, metrics = sentiment.train(rows, progress=report.progress)
        data = {"files": files, "rows": len(rows), "dropped_duplicates_or_conflicts": dropped}
        row = sentiment.save(model, metrics, data)
    return sentiment.trained_message(row, len(rows)), {"model": row.id, "data": data, "metrics": metrics}
