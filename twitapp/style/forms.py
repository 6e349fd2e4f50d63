"""The form that draws posts in an account's voice; its rules live in ``model`` (shared with the API)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DecimalRangeField, StringField

from twitapp.style.model import DEFAULT_TEMPERATURE


class WriteForm(FlaskForm):
    """How to draw posts in an account's voice; the rules live in ``generate`` (shared with the API)."""

    temperature = DecimalRangeField("Temperature", places=1, default=DEFAULT_TEMPERATURE)
    opening = StringField("Start with (optional)")
