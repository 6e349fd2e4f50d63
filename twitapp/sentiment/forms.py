"""The sentiment page's forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import TextAreaField


class SentimentForm(FlaskForm):
    """A text to score; its rules live in ``sentiment`` so the API and the CLI share them."""

    text = TextAreaField("Text of a post")


class TrainSentimentForm(FlaskForm):
    """Labelled files to train a sentiment model on; read and checked in ``routes`` before a job starts."""

    files = MultipleFileField("Labelled files (SemEval TSV, Sentiment140 CSV, or a CSV with text and label columns)")
