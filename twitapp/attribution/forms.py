"""The compare form; the rules on accounts and text live in ``model`` so the API and the CLI share them."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, TextAreaField, widgets


class CompareForm(FlaskForm):
    """Accounts and a text to rank them for."""

    usernames = SelectMultipleField(
        "Accounts",
        choices=[],
        validate_choice=False,
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
    )
    text = TextAreaField("Text of a post")
