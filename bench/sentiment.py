"""Sentiment on the SemEval-2016 development protocol: macro-averaged recall and batch speed.

    pipenv run python bench/sentiment.py --data ../shared/data/sentiment-train

Protocol (../shared/data/README.md): train on every SemEval file but twitter-2016test-A.txt (duplicates and
conflicting labels dropped, and any id or text that also occurs in the test file), test on
twitter-2016test-A.txt. Prints the macro-averaged recall of VADER (compound >= 0.05 positive, <= -0.05
negative) and of the app's trained model, then how many posts per second each scores in batches of
1,000 on one core, as POST /api/sentiment does: labels and scores ("words": false), and with per-word weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from twitapp.sentiment import labelled, vader  # noqa: E402
from twitapp.sentiment import model as sentiment  # noqa: E402

TEST_FILE = "twitter-2016test-A.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sentiment-train")
    args = parser.parse_args()
    folder = args.data / "semeval-2013-2016"
    if not (folder / TEST_FILE).is_file():
        sys.exit(f"no SemEval files in {folder}; pass --data PATH to the sentiment-train folder")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    test, _ = labelled.deduplicate(labelled.read_labelled(folder / TEST_FILE))
    test_ids, test_texts = {r.id for r in test}, {r.text.lower() for r in test}
    train = []
    for path in sorted(folder.glob("*.txt")):
        if path.name != TEST_FILE:
            train += labelled.read_labelled(path)
    train, dropped = labelled.deduplicate(train)
    overlap = [r for r in train if r.id in test_ids or r.text.lower() in test_texts]
    train = [r for r in train if r.id not in test_ids and r.text.lower() not in test_texts]
    print(f"Train: {len(train):,} texts ({dropped:,} repeats or conflicts dropped, {len(overlap):,} in the test too)")
    print(f"Test:  {len(test):,} texts of {TEST_FILE}")

    with threadpool_limits(1):
        started = time.perf_counter()
        model = sentiment.TrainedModel().fit([r.text for r in train], [r.label for r in train])
        fit_seconds = time.perf_counter() - started
        vader_metrics = sentiment.evaluate(test, None)
        trained = sentiment.evaluate(test, model)
        print("\n## Macro-averaged recall on the test file")
        for name, metrics in (("VADER", vader_metrics), ("trained model", trained)):
            per_class = ", ".join(f"{label} {value:.3f}" for label, value in metrics["recall"].items())
            print(f"  {name:<14} {metrics['macro_recall']:.3f}   ({per_class})")
        print(f"  (the trained model took {fit_seconds:.0f} s to fit, C = {sentiment.C})")

        texts = [r.text for r in test]
        print("\n## Batch scoring on one core (batches of 1,000)")
        for name, score in (("VADER", vader.score_vader), ("trained model", model.score)):
            for explain in (False, True):
                started = time.perf_counter()
                scored = 0
                for start in range(0, len(texts), 1000):
                    scored += len(score(texts[start : start + 1000], explain=explain))
                seconds = time.perf_counter() - started
                what = "with per-word weights" if explain else "labels and scores"
                print(f"  {name:<14} {what:<22} {scored / seconds:8.0f} posts/s ({scored:,} in {seconds:.1f} s)")


if __name__ == "__main__":
    main()
