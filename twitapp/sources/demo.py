"""The bundled demo accounts: fictional people whose posts were written for this project, so the app
has something to compare on a fresh install with no credentials."""

from __future__ import annotations

import json
from pathlib import Path

from twitapp.sources.formats import ParsedArchive, read_jsonl
from twitapp.sources.records import AccountRecord

DEMO_DIR = Path(__file__).parents[1] / "data" / "demo"


def demo_accounts() -> list[tuple[AccountRecord, ParsedArchive]]:
    """The bundled fictional accounts, each with its posts."""
    listing = json.loads((DEMO_DIR / "accounts.json").read_text(encoding="utf-8"))
    out = []
    for entry in listing:
        parsed = read_jsonl((DEMO_DIR / f"{entry['username']}.jsonl").read_text(encoding="utf-8"))
        account = AccountRecord(id=int(entry["id"]), username=entry["username"], name=entry["name"])
        out.append((account, parsed))
    return out
