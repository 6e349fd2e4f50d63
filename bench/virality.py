"""Will it get likes? The virality model on real accounts, split by time.

    pipenv run python bench/virality.py --data ../shared/data/authorship-dev

Every post of every account (replies included, as the X API would give them to an update), oldest first;
the newest 20% by time are the test set, everything before them trains. Each post's account history is
its own account's earlier posts, as the app builds it. Prints accuracy, balanced accuracy and ROC AUC of
always answering the majority class, of the text-only model, and of the full model, at the default
threshold (more than 0 likes) and at a second one (--threshold; by default the training posts' upper
quartile of likes, a question where the text has more to say).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from twitapp.virality import contest  # noqa: E402
from twitapp.virality import model as virality  # noqa: E402


def read_posts(folder: Path) -> list[virality.Post]:
    posts = []
    for path in sorted(folder.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows.sort(key=lambda r: (r["created_at"], int(r["id"])))
        history: list[tuple[int, datetime]] = []
        for row in rows:
            at = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
            likes = int(row["public_metrics"]["like_count"])
            posts.append(virality.Post(row["text"], at, likes, None, tuple(history[-2 * virality.HISTORY :])))
            history.append((likes, at))
    posts.sort(key=lambda p: p.created_at)
    return posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "authorship-dev")
    parser.add_argument("--threshold", type=int, default=None, help="a second threshold (default: training's 75th pct)")
    args = parser.parse_args()
    if not any(args.data.glob("*.jsonl")):
        sys.exit(f"no JSONL files in {args.data}; pass --data PATH to the authorship-dev folder")
    posts = read_posts(args.data)
    cut = int(len(posts) * (1 - contest.HELD_OUT))
    train, test = posts[:cut], posts[cut:]
    print(
        f"{len(posts):,} posts; train {len(train):,} (to {train[-1].created_at:%Y-%m-%d}), "
        f"test {len(test):,} (from {test[0].created_at:%Y-%m-%d})"
    )
    second = args.threshold
    if second is None:
        second = int(np.percentile([p.likes for p in train], 75))
    with threadpool_limits(1):
        for threshold in (0, second):
            truth = np.array([p.likes > threshold for p in test], dtype=int)
            print(
                f"\n## P(likes > {threshold}): {truth.mean():.1%} of test posts, "
                f"{np.mean([p.likes > threshold for p in train]):.1%} of training posts"
            )
            print(f"  {'model':<14} {'accuracy':>9} {'balanced':>9} {'ROC AUC':>8} {'fit s':>6}")
            majority = int(np.mean([p.likes > threshold for p in train]) >= 0.5)
            rows = [("majority", virality.evaluate(np.full(len(test), float(majority)), truth), 0.0)]
            for name, text_only in (("text only", True), ("full model", False)):
                started = time.perf_counter()
                model = virality.ViralityModel(threshold, text_only=text_only).fit(train)
                seconds = time.perf_counter() - started
                rows.append((name, virality.evaluate(model.probabilities(test), truth), seconds))
            for name, m, seconds in rows:
                auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"  # constant scores give 0.500
                print(f"  {name:<14} {m['accuracy']:>9.3f} {m['balanced_accuracy']:>9.3f} {auc:>8} {seconds:>6.1f}")


if __name__ == "__main__":
    main()
