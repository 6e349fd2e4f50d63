"""The compare form; the rules on accounts and posts live in ``model`` so the API and the CLI share them."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import Field, SelectMultipleField, widgets

# A blank line (spaces allowed on it) ends one post of a thread and starts the next.
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


class PostsField(Field):
    """Every ``text`` box of the form, in order: one box per post ("+ add a post" adds one), and in any
    box one post per block, separated by a blank line, so a thread can be typed without JavaScript."""

    def process_data(self, value) -> None:
        self.data = [value] if isinstance(value, str) else list(value or [])

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = list(valuelist)

    @property
    def boxes(self) -> list[str]:
        """What each box holds, for showing the form again as it was sent (one empty box when there is none)."""
        return self.data or [""]

    @property
    def posts(self) -> list[str]:
        """The thread's posts: each box split at blank lines; a box left empty is an empty post."""
        posts = []
        for box in self.data:
            blocks = [b.strip() for b in _BLANK_LINE.split(box.replace("\r\n", "\n"))]
            posts.extend([b for b in blocks if b] or [""])
        return posts


class CompareForm(FlaskForm):
    """Accounts and the posts of a thread (often one) to rank them for."""

    usernames = SelectMultipleField(
        "Accounts",
        choices=[],
        validate_choice=False,
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
    )
    text = PostsField("Text of a post")
