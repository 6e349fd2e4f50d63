"""Author attribution on real accounts: accuracy, calibration, latency and memory, in one run.

    pipenv run python bench/authorship.py --data ../shared/data/authorship-dev [--quick] [--tune]

Protocol (../shared/data/README.md): original posts only; for each account the newest 50 are tested
and the 200 (or 1,000) just before them trained; candidate sets of k accounts drawn with a fixed seed.
Two recipes are scored on the same sets:
- seed: the spaCy document vector and a default LogisticRegression (the first version of the app).
  The vectors come from the app's tok2vec-only pipeline, which tests/ingest/test_embed.py shows equal to
  the full pipeline's ``nlp(text).vector``.
- project: twitapp.attribution.model.fit_with_trust, fed the same hashed features the app stores, fitted as a
  request fits (held-out fit for the trust figure and the temperature, then the final fit).
Then the reliability of the project's probabilities (k = 2 and 4, 200 posts); threads (thread.py):
accuracy and expected calibration error (10 equal-width bins on the top probability) of threads of 1,
2, 3, 5 and 10 posts drawn from one account's test posts, pooled as a request pools them; and the
latency of POST /api/predict through Flask's test client for 4 accounts with 200 and with 3,200 posts
each, for one text and for a 10-post thread, with the model cache cold (cleared before every request)
and warm, and the peak memory of the process.

--tune searches block weights, C, a weight for the spaCy vector as a third block, the temperature and
the exponent of the threads' prior temperature on an earlier window (posts 100 to 50 before the newest
as the test set), so the figures reported above are not tuned on their own test posts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.linear_model import LogisticRegression  # noqa: E402

from twitapp.attribution import model as predict  # noqa: E402
from twitapp.attribution import recipe, thread, trust  # noqa: E402
from twitapp.ingest import embed, features  # noqa: E402

TEST_POSTS = 50
THREAD_LENGTHS = (1, 2, 3, 5, 10)
# Threads drawn per account and candidate set for each length above 1 (posts of one account's test
# window, distinct within a thread); a length of 1 is every test post once.
THREADS_PER_ACCOUNT = 100


def load_accounts(data: Path, originals_only: bool = True) -> dict[str, list[dict]]:
    """Each account's posts, oldest first; originals only unless asked otherwise."""
    accounts = {}
    for path in sorted(data.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if originals_only:
            rows = [
                r
                for r in rows
                if str(r.get("conversation_id", r["id"])) == str(r["id"]) and not r["text"].startswith("RT @")
            ]
        accounts[path.stem] = rows
    return accounts


def candidate_sets(names: list[str], k: int, count: int, seed: int = 0) -> list[list[str]]:
    """``count`` sets of k accounts drawn with a fixed seed (all of them once when k is every account)."""
    if k >= len(names):
        return [list(names)]
    rng = random.Random(seed * 1000 + k)
    return [rng.sample(names, k) for _ in range(count)]


class Corpus:
    """The train and test windows of every account, with both recipes' features computed once."""

    def __init__(self, accounts: dict[str, list[dict]], train: int, test_offset: int = 0):
        self.names = sorted(accounts)
        self.train_rows: dict[str, np.ndarray] = {}
        self.test_rows: dict[str, np.ndarray] = {}
        texts: list[str] = []
        for name in self.names:
            posts = accounts[name]
            end = len(posts) - test_offset
            test = posts[end - TEST_POSTS : end]
            trained = posts[max(0, end - TEST_POSTS - train) : end - TEST_POSTS]
            start = len(texts)
            texts += [p["text"] for p in trained]
            self.train_rows[name] = np.arange(start, len(texts))
            start = len(texts)
            texts += [p["text"] for p in test]
            self.test_rows[name] = np.arange(start, len(texts))
        self.texts = texts
        self.vectors = embed.embed_texts(texts)
        self.counts = features.count_matrix(texts)
        self.temperatures: list[float] = []  # what each project fit chose, for the calibration table

    def split(self, accounts: list[str]):
        train = np.concatenate([self.train_rows[a] for a in accounts])
        test = np.concatenate([self.test_rows[a] for a in accounts])
        y_train = np.concatenate([np.full(len(self.train_rows[a]), i) for i, a in enumerate(accounts)])
        y_test = np.concatenate([np.full(len(self.test_rows[a]), i) for i, a in enumerate(accounts)])
        return train, test, y_train, y_test


def seed_recipe(corpus: Corpus, accounts: list[str]) -> float:
    train, test, y_train, y_test = corpus.split(accounts)
    model = LogisticRegression(max_iter=1000).fit(corpus.vectors[train], y_train)
    return float((model.predict(corpus.vectors[test]) == y_test).mean())


def project_recipe(corpus: Corpus, accounts: list[str], tempered: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Accuracy, and the probabilities and true classes for calibration.

    The model is fitted as a request fits it: held-out fit on the training window's newest posts (for
    the trust figure and the temperature), then the final fit on the whole window.
    """
    train, test, y_train, y_test = corpus.split(accounts)
    newest_first = np.concatenate([np.arange(len(corpus.train_rows[a]))[::-1] for a in accounts])
    data = recipe.TrainingData(corpus.counts[train], y_train, newest_first)
    model = predict.fit_with_trust(data, list(range(len(accounts)))).model
    corpus.temperatures.append(model.temperature)
    if not tempered:
        model = replace(model, temperature=1.0)
    proba = model.probabilities(corpus.counts[test])
    return float((model.classes[proba.argmax(axis=1)] == y_test).mean()), proba, y_test


EQUAL_BINS = np.r_[np.linspace(0, 1, 11)[:-1], 1.0001]  # ten equal-width bins of the top probability


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, edges=EQUAL_BINS):
    """Each non-empty bin of the top probability: (low, high, posts, mean confidence, accuracy)."""
    for low, high in itertools.pairwise(edges):
        mask = (confidence >= low) & (confidence < high)
        if mask.any():
            yield low, high, int(mask.sum()), float(confidence[mask].mean()), float(correct[mask].mean())


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, edges=EQUAL_BINS) -> float:
    """ECE: the mean |confidence - accuracy| over the bins, weighted by how many posts each holds."""
    return sum(abs(c - a) * n for _, _, n, c, a in calibration_bins(confidence, correct, edges)) / len(confidence)


class ThreadAnswers(NamedTuple):
    """Threads of one length drawn from one candidate set's test posts, answered as a request answers."""

    proba: np.ndarray  # pooled probabilities, a row per thread
    truth: np.ndarray  # each thread's true column
    claimed: float | None  # the trust figure's accuracy for this length
    temperature: float  # T_n
    summed: np.ndarray  # the threads' summed untempered logits, before T_n


def thread_answers(corpus: Corpus, chosen: list[str], lengths, seed: int) -> dict[int, ThreadAnswers]:
    """For each length: threads drawn from one account's test posts, pooled with T_n fitted as a request fits."""
    train, test, y_train, y_test = corpus.split(chosen)
    newest_first = np.concatenate([np.arange(len(corpus.train_rows[a]))[::-1] for a in chosen])
    fitted = predict.fit_with_trust(
        recipe.TrainingData(corpus.counts[train], y_train, newest_first), list(range(len(chosen)))
    )
    logits = fitted.model.logits(corpus.counts[test])
    rng = np.random.default_rng(seed)
    answers = {}
    for n in lengths:
        threads, truth = [], []
        for i in range(len(chosen)):
            rows = np.flatnonzero(y_test == i)
            drawn = (
                rows[:, None]
                if n == 1
                else np.stack([rng.choice(rows, n, replace=False) for _ in range(THREADS_PER_ACCOUNT)])
            )
            threads.append(drawn)
            truth.append(np.full(len(drawn), i))
        threads, truth = np.concatenate(threads), np.concatenate(truth)
        temperature = fitted.threads.temperature(n)
        summed = logits[threads].sum(axis=1)
        proba = recipe.softmax(summed / temperature)
        answers[n] = ThreadAnswers(proba, truth, fitted.threads.trust(n).accuracy, temperature, summed)
    return answers


def answers_by_length(corpus: Corpus, k: int, sets: int) -> dict[int, list[ThreadAnswers]]:
    """Each candidate set's thread answers at k, by thread length (each set's threads drawn with its own seed)."""
    per_length: dict[int, list[ThreadAnswers]] = {n: [] for n in THREAD_LENGTHS}
    for s_, chosen in enumerate(candidate_sets(corpus.names, k, sets)):
        for n, answer in thread_answers(corpus, chosen, THREAD_LENGTHS, seed=1000 * k + s_).items():
            per_length[n].append(answer)
    return per_length


def joined(answers: list[ThreadAnswers]) -> tuple[np.ndarray, np.ndarray, float]:
    """The candidate sets' pooled probabilities and true columns together, and their trust figures' mean."""
    proba = np.concatenate([a.proba for a in answers])
    truth = np.concatenate([a.truth for a in answers])
    return proba, truth, float(np.mean([a.claimed for a in answers if a.claimed is not None]))


def thread_table(accounts: dict, ks: list[int], sets: int, train: int = 200, test_offset: int = 0) -> dict:
    """Accuracy and calibration of pooled threads (thread.py) for THREAD_LENGTHS posts at each k."""
    corpus = Corpus(accounts, train, test_offset=test_offset)
    window = "newest" if not test_offset else f"{test_offset + TEST_POSTS} to {test_offset} before the newest"
    print(
        f"\n## Threads ({train} posts per account trained, posts {window} tested; threads of one account's test "
        f"posts, {THREADS_PER_ACCOUNT} per account and set; {sets} candidate sets per k, seed 0; "
        f"prior T_n = T_1 * n^{thread.THREAD_EXPONENT})"
    )
    print(
        f"{'k':>3} {'posts':>5} {'threads':>8} {'accuracy':>9} {'mean top p':>10} {'ECE':>6} "
        f"{'claimed':>8} {'T_n median':>10}"
    )
    results = {}
    for k in ks:
        for n, answers in answers_by_length(corpus, k, sets).items():
            proba, truth, claimed = joined(answers)
            correct = proba.argmax(axis=1) == truth
            top = proba.max(axis=1)
            ece = expected_calibration_error(top, correct)
            results[k, n] = (float(correct.mean()), ece)
            print(
                f"{k:>3} {n:>5} {len(truth):>8} {correct.mean():>9.3f} {top.mean():>10.3f} {ece:>6.3f} "
                f"{claimed:>8.3f} {np.median([a.temperature for a in answers]):>10.2f}",
                flush=True,
            )
    return results


def accuracy_table(accounts: dict, sizes: list[int], ks: list[int], sets: int) -> dict:
    print(f"\n## Accuracy (newest {TEST_POSTS} posts per account tested; {sets} candidate sets per k, seed 0)")
    print(f"{'train posts':>11} {'k':>3} {'sets':>5} {'chance':>7} {'seed recipe':>12} {'project':>8}")
    calibration = {}
    for size in sizes:
        corpus = Corpus(accounts, size)
        calibration["temperatures", size] = corpus.temperatures
        for k in ks:
            drawn = candidate_sets(corpus.names, k, sets)
            seed_scores, project_scores, probas, truths = [], [], [], []
            for chosen in drawn:
                seed_scores.append(seed_recipe(corpus, chosen))
                score, proba, truth = project_recipe(corpus, chosen)
                project_scores.append(score)
                probas.append(proba)
                truths.append(truth)
            print(
                f"{size:>11} {k:>3} {len(drawn):>5} {1 / k:>7.3f} {np.mean(seed_scores):>12.3f} "
                f"{np.mean(project_scores):>8.3f}",
                flush=True,
            )
            calibration[(size, k)] = (probas, truths)
    return calibration


def reliability(calibration: dict, size: int, ks: list[int]) -> None:
    temperatures = calibration["temperatures", size]
    print(
        f"\n## Calibration of the project's probabilities ({size} posts per account; temperature fitted per "
        f"comparison: median {np.median(temperatures):.2f}, range {min(temperatures):.2f}-{max(temperatures):.2f}, "
        f"prior {recipe.TEMPERATURE})"
    )
    edges = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001]
    for k in ks:
        probas, truths = calibration[(size, k)]
        confidence = np.concatenate([p.max(axis=1) for p in probas])
        correct = np.concatenate([p.argmax(axis=1) == t for p, t in zip(probas, truths, strict=True)])
        picked = np.concatenate([p[np.arange(len(t)), t] for p, t in zip(probas, truths, strict=True)])
        nll = float(-np.mean(np.log(np.clip(picked, 1e-12, 1))))
        print(f"k = {k}: top-choice confidence against how often the top choice was right")
        print(f"  {'confidence':<12} {'posts':>6} {'mean conf.':>10} {'accuracy':>9}")
        for low, high, posts, mean_confidence, accuracy in calibration_bins(confidence, correct, edges):
            print(f"  {low:.2f}-{min(high, 1):.2f}    {posts:>6} {mean_confidence:>10.3f} {accuracy:>9.3f}")
        ece = expected_calibration_error(confidence, correct, edges)
        print(f"  expected calibration error {ece:.3f}; log loss {nll:.3f} (chance {np.log(k):.3f})")


def tune(accounts: dict) -> None:
    """Grid over block weights and C on an earlier window, then the temperature minimising log loss."""
    print("\n## Tuning on an earlier window (posts 100 to 50 before the newest are the test set)")
    corpus = Corpus(accounts, 200, test_offset=TEST_POSTS)
    drawn = {k: candidate_sets(corpus.names, k, 10, seed=1) for k in (2, 4)}
    best = None
    in_use = (recipe.BLOCK_WEIGHTS["words"], recipe.C)
    for words, c in itertools.product((0.7, 1.0, 1.4), (5.0, 20.0, 80.0)):
        recipe.BLOCK_WEIGHTS["words"], recipe.C = words, c
        scores = {k: np.mean([project_recipe(corpus, s)[0] for s in sets]) for k, sets in drawn.items()}
        print(f"  words weight {words:<4} C {c:<5} k=2 {scores[2]:.3f} k=4 {scores[4]:.3f}", flush=True)
        if best is None or scores[4] > best[0]:
            best = (scores[4], words, c)
    print(f"  best on k=4: words weight {best[1]}, C {best[2]} ({best[0]:.3f}); the temperature below is")
    print(f"  fitted for the constants in use: words weight {in_use[0]}, C {in_use[1]}")
    recipe.BLOCK_WEIGHTS["words"], recipe.C = in_use
    embedding_block(corpus, drawn)
    logits, truths = [], []
    for sets in drawn.values():
        for chosen in sets:
            _, proba, truth = project_recipe(corpus, chosen, tempered=False)
            logits.append(np.log(np.clip(proba, 1e-300, 1)))
            truths.append(truth)

    def loss(t: float) -> float:
        total, n = 0.0, 0
        for z, y in zip(logits, truths, strict=True):
            scaled = z / t
            scaled -= scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            total += float((log_norm - scaled[np.arange(len(y)), y]).sum())
            n += len(y)
        return total / n

    grid = np.round(np.arange(0.5, 4.01, 0.1), 2)
    losses = [loss(t) for t in grid]
    print(
        f"  one temperature for all: {grid[int(np.argmin(losses))]} (log loss {min(losses):.3f}; at 1.0: "
        f"{loss(1.0):.3f}); the app uses it as the prior of the per-comparison temperature"
    )


def tune_threads(accounts: dict) -> None:
    """The exponent of T_n's prior (thread.THREAD_EXPONENT), by the log loss of threads of 2 to 10 posts on the
    earlier window when T_n is the prior alone (no length fitted on held-out posts)."""
    print("\n## The prior of T_n = T_1 * n^e, alone (nothing fitted per length), on the earlier window")
    corpus = Corpus(accounts, 200, test_offset=TEST_POSTS)
    saved = thread.MIN_THREADS, thread.THREAD_EXPONENT
    thread.MIN_THREADS = 10**9
    best = None
    try:
        for exponent in (0.1, 0.2, 0.3, 0.4, 0.5, 0.7):
            thread.THREAD_EXPONENT = exponent
            losses, eces = [], []
            for k in (2, 4):
                for s_, chosen in enumerate(candidate_sets(corpus.names, k, 10, seed=1)):
                    answers = thread_answers(corpus, chosen, (2, 3, 5, 10), 1000 * k + s_).values()
                    for proba, truth, *_ in answers:
                        losses.append(-np.mean(np.log(np.clip(proba[np.arange(len(truth)), truth], 1e-12, 1))))
                        eces.append(expected_calibration_error(proba.max(axis=1), proba.argmax(axis=1) == truth))
            print(f"  e {exponent}: mean log loss {np.mean(losses):.4f}, mean ECE {np.mean(eces):.3f}", flush=True)
            if best is None or np.mean(losses) < best[0]:
                best = (np.mean(losses), exponent)
    finally:
        thread.MIN_THREADS, thread.THREAD_EXPONENT = saved
    print(f"  best: e = {best[1]} (in use: {thread.THREAD_EXPONENT})")


def embedding_block(corpus: Corpus, drawn: dict[int, list[list[str]]]) -> None:
    """Whether the spaCy document vector adds anything beside the n-grams, as a third weighted block.

    The vectors are standardised on the training posts and scaled so the block's length is about its
    weight, like the n-gram blocks. The app leaves the block out while this shows no gain.
    """
    import scipy.sparse as sp

    for weight in (0.0, 0.15, 0.3, 0.6):
        scores = {}
        for k, sets in drawn.items():
            accuracy = []
            for chosen in sets:
                train, test, y_train, y_test = corpus.split(chosen)
                weighting = recipe.Weighting.fit(corpus.counts[train])
                X_train, X_test = weighting.transform(corpus.counts[train]), weighting.transform(corpus.counts[test])
                if weight:
                    mean, std = corpus.vectors[train].mean(axis=0), corpus.vectors[train].std(axis=0) + 1e-6
                    scale = weight / np.sqrt(embed.DIM)
                    X_train = sp.hstack([X_train, sp.csr_matrix((corpus.vectors[train] - mean) / std * scale)]).tocsr()
                    X_test = sp.hstack([X_test, sp.csr_matrix((corpus.vectors[test] - mean) / std * scale)]).tocsr()
                model = recipe.Softmax.fit(X_train, y_train)
                accuracy.append((model.classes[model.decision_function(X_test).argmax(axis=1)] == y_test).mean())
            scores[k] = np.mean(accuracy)
        print(f"  spaCy vector block weight {weight:<4}      k=2 {scores[2]:.3f} k=4 {scores[4]:.3f}", flush=True)


def latency(
    accounts_all: dict, per_account: int, names: list[str], cold_runs: int, warm_runs: int, thread: int = 1
) -> None:
    """Cold and warm latency of POST /api/predict for one text, or for a thread of ``thread`` posts."""
    from twitapp import create_app
    from twitapp.extensions import db
    from twitapp.ingest.store import import_tweets
    from twitapp.sources.records import AccountRecord, PostRecord

    posts = [p["text"][:280] for p in accounts_all[names[0]][-(cold_runs + warm_runs) * thread :]]
    # One text as {"text": ...}, as a single post is sent; a thread as {"texts": [...]} of exactly ``thread`` posts.
    texts = posts if thread == 1 else [posts[i : i + thread] for i in range(0, len(posts) - thread + 1, thread)]
    with tempfile.TemporaryDirectory() as tmp:
        # Rate limits off: this measures the model, not the limiter.
        app = create_app(
            {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/bench.sqlite3", "RATELIMIT_ENABLED": False}
        )
        with app.app_context():
            db.create_all()
            stored = []
            for name in names:
                rows = accounts_all[name][-per_account:]
                posts = [
                    PostRecord(
                        id=int(r["id"]),
                        text=r["text"],
                        created_at=datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")),
                    )
                    for r in rows
                ]
                account = AccountRecord(int(rows[0]["author_id"]), name, name)
                stored.append(import_tweets(account, posts, source="archive").total)
        client = app.test_client()

        def ask(text: str | list[str]) -> float:
            body = {"usernames": names} | ({"texts": text} if isinstance(text, list) else {"text": text})
            start = time.perf_counter()
            response = client.post("/api/predict", json=body)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.get_json()
            return elapsed * 1000

        ask("warm up the pipeline and the imports")
        cold = []
        for text in texts[:cold_runs]:
            predict.cache.clear()
            cold.append(ask(text))
        warm = [ask(text) for text in texts[cold_runs:]]
        with app.app_context():
            db.engine.dispose()

    def pct(values, q):
        return float(np.percentile(values, q))

    label = f"{len(names)} x {min(stored)}-{max(stored)} posts" + (f", {thread}-post thread" if thread > 1 else "")
    print(
        f"  {label:<40} cold p50 {pct(cold, 50):7.1f} ms  p95 {pct(cold, 95):7.1f} ms   "
        f"warm p50 {pct(warm, 50):6.1f} ms  p95 {pct(warm, 95):6.1f} ms   ({len(cold)} cold, {len(warm)} warm)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "authorship-dev")
    parser.add_argument("--sets", type=int, default=20, help="candidate sets per k")
    parser.add_argument("--quick", action="store_true", help="200 posts only, k = 2 and 4, 10 sets")
    parser.add_argument("--tune", action="store_true", help="search weights, C and temperature first")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--latency-only", action="store_true")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data}; pass --data PATH to the authorship-dev folder")

    started = time.perf_counter()
    accounts = load_accounts(args.data)
    print(f"Accounts: {', '.join(f'{n} ({len(p)})' for n, p in accounts.items())}")
    print(
        f"Recipe: block weights {recipe.BLOCK_WEIGHTS}, C {recipe.C}, min df {recipe.MIN_DF}, "
        f"temperature prior {recipe.TEMPERATURE} (pull {trust.TEMPERATURE_PULL})"
    )
    if args.tune:
        tune(accounts)
        tune_threads(accounts)
        return
    if not args.latency_only:
        sizes, ks, sets = ([200], [2, 4], 10) if args.quick else ([200, 1000], [2, 4, 8], args.sets)
        calibration = accuracy_table(accounts, sizes, ks, sets)
        reliability(calibration, 200, [k for k in (2, 4) if k in ks])
        thread_table(accounts, ks, sets)

    if not args.skip_latency:
        print("\n## POST /api/predict through the test client (SQLite), 4 accounts")
        every_post = load_accounts(args.data, originals_only=False)
        big = sorted(every_post, key=lambda n: len(every_post[n]), reverse=True)[:4]
        latency(accounts, 200, sorted(accounts)[:4], cold_runs=20, warm_runs=50)
        latency(every_post, 3200, big, cold_runs=10, warm_runs=50)
        latency(accounts, 200, sorted(accounts)[:4], cold_runs=20, warm_runs=50, thread=10)
        latency(every_post, 3200, big, cold_runs=10, warm_runs=50, thread=10)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nPeak resident memory of this process: {peak:.0f} MiB; total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
