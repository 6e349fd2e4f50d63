"""Hashed n-gram counts of a post: what author attribution learns from, computed once at ingest.

The counts do not depend on which accounts are compared, so they are stored with each post; a request
then only weights them (TF-IDF over the chosen accounts' posts) and fits. Hashing needs no vocabulary,
so a post's features never change when other posts arrive.

Two blocks share one index space: character n-grams within words (2 to 5, lowercased) and word
unigrams and bigrams (hashtags and mentions kept whole, punctuation as tokens). Shortened t.co links
become one symbol, since their codes are random; full links stay, since where an account sends people
(its own site, its donation page, the outlets it quotes) is part of how it writes.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

# Bump when anything below changes what a post's stored features would be; stale rows are recomputed.
FEATURE_VERSION = 1
BLOCK_BITS = 20
BLOCK_SIZE = 2**BLOCK_BITS
LINK = "\u2197"  # ↗ stands for any link
_SHORT_LINK = re.compile(r"https?://t\.co/\w+")
WORD_PATTERN = r"(?u)[#@]?\w+|[^\w\s]"
_HEADER = struct.Struct("<HI")  # version, number of entries


def normalise(text: str) -> str:
    """The text as the features see it: each shortened link as one symbol."""
    return _SHORT_LINK.sub(LINK, text)


@dataclass(frozen=True)
class Block:
    name: str
    vectorizer: HashingVectorizer
    offset: int


def _vectorizer(**options) -> HashingVectorizer:
    return HashingVectorizer(n_features=BLOCK_SIZE, alternate_sign=False, norm=None, dtype=np.float32, **options)


BLOCKS = (
    Block("chars", _vectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=True), 0),
    Block(
        "words",
        _vectorizer(analyzer="word", ngram_range=(1, 2), lowercase=True, token_pattern=WORD_PATTERN),
        BLOCK_SIZE,
    ),
)
N_FEATURES = BLOCK_SIZE * len(BLOCKS)


def count_matrix(texts: Sequence[str]) -> sp.csr_matrix:
    """Hashed n-gram counts, one row per text, both blocks side by side."""
    normalised = [normalise(t) for t in texts]
    parts = [block.vectorizer.transform(normalised) for block in BLOCKS]
    matrix = sp.hstack(parts, format="csr", dtype=np.float32)
    matrix.sort_indices()
    return matrix


def to_bytes(row: sp.csr_matrix) -> bytes:
    """One row as stored: a small header, then int32 column indices and uint16 counts."""
    indices = row.indices.astype("<i4")
    counts = np.minimum(row.data, 65535).astype("<u2")
    return _HEADER.pack(FEATURE_VERSION, len(indices)) + indices.tobytes() + counts.tobytes()


def encode(texts: Sequence[str]) -> list[bytes]:
    """The stored form of each text's features."""
    if not texts:
        return []
    matrix = count_matrix(texts)
    return [to_bytes(matrix[i]) for i in range(matrix.shape[0])]


def is_current(blob: bytes | None) -> bool:
    """Whether a stored blob was written by this version of the feature code."""
    return blob is not None and len(blob) >= _HEADER.size and _HEADER.unpack_from(blob)[0] == FEATURE_VERSION


def decode(blobs: Sequence[bytes]) -> sp.csr_matrix:
    """Stored blobs (all current) back into one sparse matrix, without a Python loop over entries."""
    lengths = np.fromiter((_HEADER.unpack_from(b)[1] for b in blobs), dtype=np.int64, count=len(blobs))
    indptr = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float32)
    for i, blob in enumerate(blobs):
        n = lengths[i]
        start, end = indptr[i], indptr[i + 1]
        indices[start:end] = np.frombuffer(blob, dtype="<i4", count=n, offset=_HEADER.size)
        data[start:end] = np.frombuffer(blob, dtype="<u2", count=n, offset=_HEADER.size + 4 * n)
    return sp.csr_matrix((data, indices, indptr), shape=(len(blobs), N_FEATURES))
