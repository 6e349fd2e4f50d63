"""Calibration of threads across test windows: how much of a window's error is the window's own.

    pipenv run python bench/windows.py --data ../shared/data/authorship-dev [--k 4] [--sets 20]

bench/authorship.py tests on each account's newest 50 posts only, so its calibration figures are one
draw of a window. Here its thread protocol is repeated with the test window moved back 50 posts at a
time (the 200 training posts are always the ones just before the test posts), at one k, and for each
window and thread length it prints:
- ECE: the expected calibration error of the pooled probabilities, computed as a request computes them;
- conf-acc: the mean top probability less the accuracy (below 0: the answers were too modest);
- claimed-acc: the trust figure's accuracy (held out from the training window) less the test accuracy;
- best T: the lowest ECE that any one temperature per window and length reaches, chosen on that
  window's own test threads. No calibration by temperature, which sees only the training window, can
  do better, so a window whose best T is above a target cannot meet it by any choice of temperature.
Then the same figures over all the windows' answers together, and each length's mean and worst window.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from authorship import (  # noqa: E402
    TEST_POSTS,
    THREAD_LENGTHS,
    Corpus,
    answers_by_length,
    candidate_sets,
    expected_calibration_error,
    joined,
    load_accounts,
)

from twitapp.attribution import recipe  # noqa: E402

TRAIN_POSTS = 200
STEP = TEST_POSTS  # windows side by side, none overlapping
# The temperatures tried for the best-T bound: log-spaced, wide enough for every length.
T_GRID = np.exp(np.linspace(np.log(0.3), np.log(8.0), 240))


def ece_of(proba: np.ndarray, truth: np.ndarray) -> float:
    return expected_calibration_error(proba.max(axis=1), proba.argmax(axis=1) == truth)


def best_temperature(summed: list[np.ndarray], truth: np.ndarray) -> tuple[float, float]:
    """The lowest ECE one temperature reaches on these threads (the candidate sets' answers together), and that T."""
    eces = [ece_of(np.concatenate([recipe.softmax(s / t) for s in summed]), truth) for t in T_GRID]
    best = int(np.argmin(eces))
    return eces[best], float(T_GRID[best])


def window(accounts: dict, offset: int, k: int, sets: int) -> dict[int, dict]:
    """Per thread length: the answers of every candidate set on the window ``offset`` posts before the newest."""
    corpus = Corpus(accounts, TRAIN_POSTS, test_offset=offset)
    result = {}
    for n, answers in answers_by_length(corpus, k, sets).items():
        proba, truth, claimed = joined(answers)
        accuracy = float(np.mean(proba.argmax(axis=1) == truth))
        bound, t = best_temperature([a.summed for a in answers], truth)
        result[n] = {
            "proba": proba,
            "truth": truth,
            "ece": ece_of(proba, truth),
            "gap": float(proba.max(axis=1).mean()) - accuracy,
            "claimed": claimed - accuracy,
            "bound": bound,
            "t": t,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "authorship-dev")
    parser.add_argument("--k", type=int, default=4, help="accounts per candidate set")
    parser.add_argument("--sets", type=int, default=20, help="candidate sets per window")
    parser.add_argument("--windows", type=int, default=15, help=f"test windows, the newest first, {STEP} posts apart")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data}; pass --data PATH to the authorship-dev folder")
    started = time.perf_counter()
    accounts = load_accounts(args.data)
    fewest = min(len(posts) for posts in accounts.values())
    offsets = [o for o in range(0, args.windows * STEP, STEP) if o + TEST_POSTS + TRAIN_POSTS <= fewest]
    print(
        f"## Threads by test window (k = {args.k}, {len(candidate_sets(sorted(accounts), args.k, args.sets))} "
        f"candidate sets, {TRAIN_POSTS} posts trained just "
        f"before each window of {TEST_POSTS}; offset = posts between the window and the newest)"
    )
    print(f"{'offset':>6} {'posts':>5} {'ECE':>6} {'conf-acc':>9} {'claimed-acc':>12} {'best T':>7} {'at T':>5}")
    results = {}
    for offset in offsets:
        results[offset] = window(accounts, offset, args.k, args.sets)
        for n, r in results[offset].items():
            print(
                f"{offset:>6} {n:>5} {r['ece']:>6.3f} {r['gap']:>+9.3f} {r['claimed']:>+12.3f} "
                f"{r['bound']:>7.3f} {r['t']:>5.2f}",
                flush=True,
            )
    print(f"\n## Over all {len(offsets)} windows")
    print(f"{'posts':>5} {'pooled ECE':>10} {'mean ECE':>9} {'worst ECE':>10} {'at offset':>9} {'mean best T':>11}")
    for n in THREAD_LENGTHS:
        proba = np.concatenate([results[o][n]["proba"] for o in offsets])
        truth = np.concatenate([results[o][n]["truth"] for o in offsets])
        eces = [results[o][n]["ece"] for o in offsets]
        worst = int(np.argmax(eces))
        print(
            f"{n:>5} {ece_of(proba, truth):>10.3f} {np.mean(eces):>9.3f} {eces[worst]:>10.3f} {offsets[worst]:>9} "
            f"{np.mean([results[o][n]['bound'] for o in offsets]):>11.3f}"
        )
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
