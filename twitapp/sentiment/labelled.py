"""Readers for labelled sentiment files, in the layouts people bring them in.

- SemEval Task 4 subtask A: ``id<TAB>label<TAB>text`` (labels positive / neutral / negative). Real files
  quote some texts, carry literal ``\\u2019``-style escapes, end lines with a stray tab, and break a post
  over two lines now and then; all of that is repaired here.
- Sentiment140: six CSV columns, no header or the header ``target,ids,date,flag,user,text``; target 0 is
  negative, 2 neutral, 4 positive.
- Plain CSV with a header naming ``text`` and ``label`` (or ``sentiment``) columns; other columns are ignored.

Every reader returns ``LabelledText`` rows; ``read_labelled`` picks the reader by looking at the file and
raises ``ArchiveError`` (naming the line) for anything it cannot read.
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path

from twitapp.sources.archive import ArchiveError, read_file_bytes
from twitapp.sources.records import clean_text

LABELS = ("negative", "neutral", "positive")
_SENTIMENT140 = {"0": "negative", "2": "neutral", "4": "positive"}
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_SEMEVAL_LINE = re.compile(r"^(\d+)\t(positive|negative|neutral)\t(.*)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LabelledText:
    id: str  # "semeval:ID" or "sentiment140:ID" (ids are compared within a source), "" when unknown
    label: str
    text: str


def _tidy(text: str) -> str:
    text = text.strip().rstrip("\t").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('""', '"')
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return clean_text(html.unescape(text)).strip()


def read_semeval(data: str) -> list[LabelledText]:
    rows: list[LabelledText] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        match = _SEMEVAL_LINE.match(line)
        if match is None:
            if rows and not re.match(r"^\d+\t", line):  # a post broken over lines: the rest of the last one
                last = rows[-1]
                rows[-1] = LabelledText(last.id, last.label, _tidy(f"{last.text} {line}"))
                continue
            raise ArchiveError(f"line {number}: expected id<TAB>positive|neutral|negative<TAB>text")
        rows.append(LabelledText(f"semeval:{match.group(1)}", match.group(2).lower(), _tidy(match.group(3))))
    return rows


def read_sentiment140(data: str) -> list[LabelledText]:
    rows: list[LabelledText] = []
    for number, record in enumerate(csv.reader(io.StringIO(data)), start=1):
        if not record or (number == 1 and record[0].strip().lower() == "target"):
            continue
        if len(record) != 6:
            raise ArchiveError(f"line {number}: expected the six Sentiment140 columns, found {len(record)}")
        label = _SENTIMENT140.get(record[0].strip())
        if label is None:
            raise ArchiveError(f"line {number}: target {record[0]!r} is not 0, 2 or 4")
        rows.append(LabelledText(f"sentiment140:{record[1].strip()}", label, _tidy(record[5])))
    return rows


def read_plain_csv(data: str) -> list[LabelledText]:
    reader = csv.DictReader(io.StringIO(data))
    fields = {name.strip().lower(): name for name in reader.fieldnames or []}
    label_field = fields.get("label") or fields.get("sentiment")
    if "text" not in fields or label_field is None:
        raise ArchiveError("line 1: a CSV needs a header with 'text' and 'label' (or 'sentiment') columns")
    rows: list[LabelledText] = []
    for number, record in enumerate(reader, start=2):
        label = (record.get(label_field) or "").strip().lower()
        if label not in LABELS:
            raise ArchiveError(f"line {number}: label {label!r} is not one of {', '.join(LABELS)}")
        text = record.get(fields["text"])
        if text is None:
            raise ArchiveError(f"line {number}: no text")
        rows.append(LabelledText("", label, _tidy(text)))  # ids of plain files are not comparable across files
    return rows


def _layout(data: str, name: str) -> str:
    """Which layout a file is in, from its first line that is not blank; an ArchiveError for none."""
    first = next((line for line in data.splitlines() if line.strip()), "")
    if _SEMEVAL_LINE.match(first):
        return "semeval"
    if re.match(r'^"?[024]"?,', first) or first.strip().lower().startswith("target,ids"):
        return "sentiment140"
    if "," in first:
        return "csv"
    raise ArchiveError(f"{name}: not SemEval TSV, Sentiment140 CSV or a CSV with text and label columns")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff")  # Sentiment140 is not all UTF-8


def check_head(head: bytes, name: str = "the file") -> None:
    """Refuse, from its first bytes alone, a file in none of the three layouts (the rest is read later)."""
    _layout(_text(head), name)


def parse_labelled(raw: bytes, name: str = "the file") -> list[LabelledText]:
    """Any of the three layouts, told apart by their first line; empty texts are dropped."""
    data = _text(raw)
    reader = {"semeval": read_semeval, "sentiment140": read_sentiment140, "csv": read_plain_csv}[_layout(data, name)]
    return [row for row in reader(data) if row.text]


def read_labelled(path: str | Path) -> list[LabelledText]:
    return parse_labelled(read_file_bytes(path), str(path))


def deduplicate(rows: list[LabelledText]) -> tuple[list[LabelledText], int]:
    """One row per text (and per id): a text given two labels is dropped, as no one can say which holds.

    Returns the rows kept and how many were dropped.
    """
    by_text: dict[str, set[str]] = {}
    for row in rows:
        by_text.setdefault(row.text.lower(), set()).add(row.label)
    kept, seen_ids, seen_texts = [], set(), set()
    for row in rows:
        key = row.text.lower()
        if len(by_text[key]) > 1 or key in seen_texts or (row.id and row.id in seen_ids):
            continue
        seen_texts.add(key)
        if row.id:
            seen_ids.add(row.id)
        kept.append(row)
    return kept, len(rows) - len(kept)
