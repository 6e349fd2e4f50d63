"""The app's forms; Flask-WTF adds a CSRF token to each."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from wtforms import (
    BooleanField,
    DecimalRangeField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, NumberRange, Optional, Regexp

from .archive import USERNAME_RE
from .generate import DEFAULT_TEMPERATURE


def _username(label: str, missing: str) -> StringField:
    """An X username, typed with or without its @."""
    return StringField(
        label,
        validators=[
            DataRequired(missing),
            Regexp(USERNAME_RE, message="An X username is 1 to 15 letters, digits or underscores."),
        ],
        filters=[lambda v: v.strip().lstrip("@") if isinstance(v, str) else v],
    )


class AddAccountForm(FlaskForm):
    username = _username("X username", "Type the username of the account to add.")


class ImportForm(FlaskForm):
    """A file of one account's posts (an archive's tweets.js, with its account.js if sent too; JSONL; CSV)."""

    username = _username("Account", "Type the username the posts belong to.")
    files = MultipleFileField("File of posts")


class RestoreForm(FlaskForm):
    """A file from "Download every account and post" (or `flask export`) to store back."""

    file = FileField("Export file")


class CompareForm(FlaskForm):
    """Accounts and a text; the rules on both live in ``predict`` so the API and the CLI share them."""

    usernames = SelectMultipleField(
        "Accounts",
        choices=[],
        validate_choice=False,
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
    )
    text = TextAreaField("Text of a post")


class UpdateForm(FlaskForm):
    """A button that fetches an account's newer posts; the form only carries its CSRF token."""


class SentimentForm(FlaskForm):
    """A text to score; its rules live in ``sentiment`` so the API and the CLI share them."""

    text = TextAreaField("Text of a post")


class TrainSentimentForm(FlaskForm):
    """Labelled files to train a sentiment model on; read and checked in ``views`` before a job starts."""

    files = MultipleFileField("Labelled files (SemEval TSV, Sentiment140 CSV, or a CSV with text and label columns)")


class ViralityForm(FlaskForm):
    """A post to score, and optionally the stored account it would come from (its history counts)."""

    text = TextAreaField("Text of a post")
    username = SelectField("Posted by", choices=[], validate_choice=False)
    media = BooleanField("With a photo or video")


class RunForm(FlaskForm):
    """A button that starts a job; the form only carries its CSRF token."""


class TrainViralityForm(FlaskForm):
    """The question a virality challenger answers: more than how many likes (blank: the champion's)."""

    threshold = IntegerField(
        "More than how many likes?",
        validators=[Optional(), NumberRange(min=0, message="The number of likes is a whole number, 0 or more.")],
    )


class WriteForm(FlaskForm):
    """How to draw posts in an account's voice; the rules live in ``generate`` (shared with the API)."""

    temperature = DecimalRangeField("Temperature", places=1, default=DEFAULT_TEMPERATURE)
    opening = StringField("Start with (optional)")
