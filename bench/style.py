"""Write like them: the style model on real accounts.

    pipenv run python bench/style.py --data ../shared/data/authorship-dev

For each account: its original posts (no replies, no "RT @" posts), links dropped, oldest first; the
engine is trained on all but the newest 10% (choosing its order and discounts on the newest tenth of
those) and tested on the newest 10%. Printed per account and engine:
- held-out bits per character (each post's end counts as one symbol, like a newline);
- the mean TF-IDF cosine distance from each generated post to its nearest real post;
- the copy rate: the share of drafts holding 40 consecutive characters of a real post (such drafts are
  drawn again, so none is among the generated posts; how many were drawn again is shown beside it);
- invented words: the share of the generated posts' words that no post the engine learned from holds
  (the account's training posts and, for Kneser-Ney, the lent pool; twitapp/style/words.py says what
  counts as a word); --free-spelling draws without holding words to known ones, as the writer once did,
  to show what that rule changes;
- style fidelity: the share of generated posts that the app's author attribution, fitted on the real
  posts of that account and of three others (drawn with a fixed seed), gives back to that account.
Beside the engine, a plain interpolated Kneser-Ney 8-gram with one discount of 0.75 is scored on the same
posts, so the figures can be read against a fixed baseline. As in the app, the Kneser-Ney engine is lent
the newest 300 posts of every other account, mixed in with a weight chosen on the held-out tenth (the
"order" column shows order/own weight when the mixture won). When PyTorch is installed, the LSTM engine
(the classic 2 x 128 recipe, stopped early on the same held-out tenth) is run too, on --lstm-accounts
(by default the three accounts of the reference table) since it takes minutes per account.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from twitapp.attribution import model as predict  # noqa: E402
from twitapp.style import judge, kneser_ney, sampling  # noqa: E402
from twitapp.style import lstm as neural  # noqa: E402
from twitapp.style import model as generate  # noqa: E402


def load(data: Path) -> dict[str, list[str]]:
    accounts = {}
    for path in sorted(data.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = [r for r in rows if str(r["conversation_id"]) == str(r["id"]) and not r["text"].startswith("RT @")]
        rows.sort(key=lambda r: (r["created_at"], int(r["id"])))
        accounts[path.stem] = [t for t in (sampling.normalise(r["text"]) for r in rows) if t]
    return accounts


def plain_baseline(train: list[str], test: list[str]) -> float:
    alphabet = "".join(sorted({c for t in train + test for c in t}))
    model = kneser_ney.CharModel.train(train, order=8, alphabet=alphabet)
    for table in model.tables:
        table.discounts = np.array([0.75, 0.75, 0.75])
    return model.bits_per_char(test)


def print_row(name: str, posts: int, engine: str, figures: dict, baseline: float, seconds: float) -> None:
    shape = str(figures.get("order", f"{figures.get('epochs', '?')}ep"))
    if "own_weight" in figures:
        shape += f"/{figures['own_weight']:.1f}"
    print(
        f"{name:<14} {posts:>6} {engine:<12} {shape:>7} {figures['bits_per_char']:>9.3f} "
        f"{baseline:>10.3f} {figures['distance']:>8.3f} {figures['copy_rate']:>7.1%} "
        f"{figures['copies_drawn_again']:>7} {figures['invented_words']:>8.1%} {figures['fidelity']:>8.0%} "
        f"{seconds:>7.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "authorship-dev")
    parser.add_argument("--count", type=int, default=50, help="posts generated per account (default 50)")
    parser.add_argument("--temperature", type=float, default=generate.DEFAULT_TEMPERATURE)
    parser.add_argument("--lstm-accounts", default="ewarren,timryan,juliancastro", help="comma-separated, or 'all'")
    parser.add_argument("--accounts", default="all", help="the accounts to report (comma-separated), or 'all'")
    parser.add_argument(
        "--free-spelling",
        action="store_true",
        help="draw without holding words to known ones (as the writer once did), to compare",
    )
    args = parser.parse_args()
    accounts = load(args.data)
    if not accounts:
        sys.exit(f"no JSONL files in {args.data}; pass --data PATH to the authorship-dev folder")
    names = sorted(accounts)
    rng = random.Random(0)
    print(f"{args.count} posts generated per account at temperature {args.temperature}\n")
    print(
        f"{'account':<14} {'posts':>6} {'engine':<12} {'order':>7} {'bits/char':>9} {'plain KN-8':>10} "
        f"{'distance':>8} {'copies':>7} {'redrawn':>7} {'invented':>8} {'fidelity':>8} {'seconds':>7}"
    )
    fidelities, invented = [], []
    if neural.available():
        import torch

        torch.set_num_threads(2)  # the LSTM's own threads; BLAS stays on one
    with threadpool_limits(1):
        for name in names:
            others = rng.sample([n for n in names if n != name], 3)  # drawn for every account: the same in any run
            if args.accounts != "all" and name not in args.accounts.split(","):
                continue
            texts = accounts[name]
            cut = int(len(texts) * (1 - generate.HELD_OUT))
            baseline = plain_baseline(texts[:cut], texts[cut:])
            engines = ["kneser-ney"]
            if neural.available() and (args.lstm_accounts == "all" or name in args.lstm_accounts.split(",")):
                engines.append("lstm")
            for engine in engines:
                started = time.perf_counter()
                pool = [p for o in names if o != name for p in accounts[o][-generate.POOL_PER_ACCOUNT :]]
                figures = judge.judge(
                    texts,
                    [accounts[o][-predict.MAX_TRAIN_POSTS :] for o in others],
                    count=args.count,
                    temperature=args.temperature,
                    engine=engine,
                    pool=pool if engine == "kneser-ney" else (),
                    free_spelling=args.free_spelling,
                )
                print_row(name, len(texts), engine, figures, baseline, time.perf_counter() - started)
                if engine == "kneser-ney":
                    fidelities.append(figures["fidelity"])
                invented.append((figures["invented_words"], f"{name}, {engine}"))
    print(f"\nmean Kneser-Ney style fidelity (among 4 accounts; chance 25%): {np.mean(fidelities):.0%}")
    print(f"largest share of invented words: {max(invented)[0]:.1%} ({max(invented)[1]})")
    if not neural.available():
        print("PyTorch is not installed: the LSTM engine was not run.")


if __name__ == "__main__":
    main()
