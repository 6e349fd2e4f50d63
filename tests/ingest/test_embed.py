"""The tok2vec-only pipeline gives the seed recipe's vectors, faster, and the stored form round-trips."""

import numpy as np

from twitapp.ingest import embed

TEXTS = [
    "Fresh sourdough at six, come early! 🍞 #bakery",
    "Route 12 was 14 minutes late again. Third time this week.",
    "spent three hours on a bug that was a missing `await`",
    "",
]


def test_vectors_equal_the_full_pipelines_doc_vector():
    full = embed.full_pipeline()
    fast = embed.embed_texts(TEXTS)
    expected = np.stack([full(t).vector if t else np.zeros(embed.DIM, np.float32) for t in TEXTS])
    assert fast.shape == (len(TEXTS), embed.DIM)
    # Equal to float32 rounding: the fast path multiplies matrices with another BLAS (see embed.py).
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(fast[:3]).sum(axis=1).min() > 0


def test_only_tok2vec_runs():
    assert embed.get_pipeline().pipe_names == ["tok2vec"]
    assert embed.get_pipeline() is embed.get_pipeline()


def test_missing_configured_model_falls_back_to_the_bundled_one():
    assert embed.resolve_model_name("no_such_pipeline_xyz") == embed.FALLBACK_MODEL


def test_stored_bytes_round_trip_as_float32():
    vectors = embed.embed_texts(TEXTS[:2])
    blobs = [embed.to_bytes(v) for v in vectors]
    assert all(len(b) == embed.DIM * 4 for b in blobs)
    for blob, vector in zip(blobs, vectors, strict=True):
        np.testing.assert_array_equal(embed.from_bytes(blob), vector)
