"""Trained models kept as data: NumPy arrays and one JSON document, together in an ``npz`` file.

Loading a pickle runs whatever code it names, so anyone able to write one row of the model tables could
run code in every web worker. An ``npz`` file read with ``allow_pickle=False`` holds numbers and text and
nothing else: object arrays (pickles inside the archive) are refused. Models are rebuilt from it by
constructing the same scikit-learn objects the training code builds and setting their fitted attributes
(vocabulary, idf, coefficients, classes), after checking that the pieces fit together.

The sha256 kept beside the bytes is an integrity check that finds a damaged row; it is no defence against
someone who can write the row, since they can write its hash too. What makes such a row harmless is that
nothing here ever runs code read from it. The hash is checked before any bytes are read, in registry.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

META = "meta"  # the JSON document, stored as its UTF-8 bytes
MAX_BYTES = 1 << 30  # what the arrays may take once unpacked: more is not a model this code stored
_ZIP_MAGIC = b"PK\x03\x04"


class ArtefactError(ValueError):
    """The bytes are not a model this code can read: damaged, of another layout, or not an npz file."""


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def pack(arrays: Mapping[str, np.ndarray], meta: dict) -> bytes:
    """Arrays (numbers or text, never objects) and a JSON-able document as the bytes of a compressed npz."""
    if META in arrays:
        raise ValueError(f"{META!r} is the name of the JSON document")
    for name, array in arrays.items():
        if np.asarray(array).dtype.hasobject:
            raise ValueError(f"{name} holds Python objects, which would have to be pickled")
    document = np.frombuffer(json.dumps(meta, allow_nan=False).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays, **{META: document})
    return buffer.getvalue()


def unpack(blob: bytes) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the JSON document of ``pack``'s bytes; ArtefactError for anything else."""
    if not blob.startswith(_ZIP_MAGIC):
        raise ArtefactError("not an npz file")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > MAX_BYTES:
            raise ArtefactError(f"its arrays would take {unpacked:,} bytes")
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        document = arrays.pop(META)
        if document.dtype != np.uint8 or document.ndim != 1:
            raise ArtefactError("its document is not a string of bytes")
        meta = json.loads(document.tobytes().decode())
    except ArtefactError:
        raise
    except Exception as exc:  # whatever the bytes hold, reading them must not fail in any other way
        raise ArtefactError(f"unreadable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict):
        raise ArtefactError("its document is not a JSON object")
    return arrays, meta


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ArtefactError(message)


def array(arrays: Mapping[str, np.ndarray], name: str, ndim: int, kinds: str = "f") -> np.ndarray:
    """A stored array by name, of ``ndim`` dimensions and a dtype of one of ``kinds`` (finite if floats)."""
    found = arrays.get(name)
    check(found is not None, f"{name} is missing")
    check(
        found.ndim == ndim and found.dtype.kind in kinds,
        f"{name} is not what was stored ({found.dtype}, {found.shape})",
    )
    check(found.dtype.kind != "f" or bool(np.isfinite(found).all()), f"{name} holds values that are not finite")
    return found


def _settings(estimator) -> dict:
    """An estimator's parameters as JSON values: what it was built with, to compare with what the code builds."""
    out = {}
    for name, value in estimator.get_params().items():
        if name == "dtype":
            value = np.dtype(value).name
        elif isinstance(value, tuple):
            value = list(value)
        elif value is not None and not isinstance(value, str | int | float | bool):
            raise ValueError(f"{type(estimator).__name__}'s {name} cannot be stored as data: {value!r}")
        out[name] = value
    return out


def _same_settings(name: str, stored: object, built: dict) -> None:
    check(isinstance(stored, dict), f"{name}'s settings are missing")
    for key in sorted(set(stored) | set(built)):
        check(
            stored.get(key) == built.get(key),
            f"{name} was stored with {key}={stored.get(key)!r}; this code builds {key}={built.get(key)!r}",
        )


# ---------------------------------------------------------------------------------------------------
# scikit-learn's pieces


def vectorizer_parts(name: str, vectorizer: TfidfVectorizer) -> tuple[dict[str, np.ndarray], dict]:
    """A fitted TF-IDF vectorizer as arrays (its idf) and JSON (its settings, its terms in column order)."""
    vocabulary = vectorizer.vocabulary_
    terms = sorted(vocabulary, key=vocabulary.__getitem__)
    if [vocabulary[t] for t in terms] != list(range(len(terms))):
        raise ValueError(f"{name}'s vocabulary does not number its columns 0 to {len(terms) - 1}")
    return {f"{name}_idf": np.asarray(vectorizer.idf_, dtype=np.float64)}, {
        "settings": _settings(vectorizer),
        "terms": terms,
    }


def restore_vectorizer(
    name: str, vectorizer: TfidfVectorizer, arrays: Mapping[str, np.ndarray], meta: dict
) -> TfidfVectorizer:
    """``vectorizer``, as the code builds it (unfitted), given the stored vocabulary and idf."""
    part = meta.get(name)
    check(isinstance(part, dict), f"{name} is missing")
    _same_settings(name, part.get("settings"), _settings(vectorizer))
    terms = part.get("terms")
    check(isinstance(terms, list) and all(isinstance(t, str) for t in terms), f"{name}'s terms are not text")
    check(len(terms) > 0 and len(set(terms)) == len(terms), f"{name}'s terms are empty or repeated")
    idf = array(arrays, f"{name}_idf", 1)
    check(len(idf) == len(terms), f"{name} has {len(terms)} terms but {len(idf)} idf weights")
    vectorizer.vocabulary_ = {term: column for column, term in enumerate(terms)}
    vectorizer.idf_ = idf.astype(np.float64, copy=False)
    return vectorizer


def classifier_parts(name: str, classifier: LogisticRegression) -> dict[str, np.ndarray]:
    """A fitted logistic regression's arrays: coefficients, intercepts, classes, iterations."""
    return {
        f"{name}_coef": np.asarray(classifier.coef_, dtype=np.float64),
        f"{name}_intercept": np.asarray(classifier.intercept_, dtype=np.float64),
        f"{name}_classes": np.asarray(classifier.classes_),
        f"{name}_n_iter": np.asarray(classifier.n_iter_),
    }


def restore_classifier(
    name: str, classifier: LogisticRegression, arrays: Mapping[str, np.ndarray], n_features: int
) -> LogisticRegression:
    """``classifier``, as the code builds it (unfitted), given the stored fit over ``n_features`` columns."""
    classes = array(arrays, f"{name}_classes", 1, kinds="iubU")
    check(len(classes) >= 2, f"{name} has fewer than two classes")
    check(np.array_equal(classes, np.unique(classes)), f"{name}'s classes are not distinct and in order")
    coef = array(arrays, f"{name}_coef", 2)
    rows = 1 if len(classes) == 2 else len(classes)
    check(coef.shape == (rows, n_features), f"{name}'s coef has shape {coef.shape}, not {(rows, n_features)}")
    intercept = array(arrays, f"{name}_intercept", 1)
    check(intercept.shape == (rows,), f"{name}'s intercept has shape {intercept.shape}, not {(rows,)}")
    classifier.classes_ = classes
    classifier.coef_ = coef.astype(np.float64, copy=False)
    classifier.intercept_ = intercept.astype(np.float64, copy=False)
    classifier.n_features_in_ = n_features
    classifier.n_iter_ = array(arrays, f"{name}_n_iter", 1, kinds="iu")
    return classifier
