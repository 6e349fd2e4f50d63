"""Form pieces every capability uses: a button that only carries its CSRF token, and a typed handle."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Regexp

from twitapp.sources import handles


class ButtonForm(FlaskForm):
    """A button that starts something (a job, a fetch, a deletion); the form only carries its CSRF token."""


def username_field(label: str, missing: str) -> StringField:
    """An X username as a person types it, with or without its @."""
    return StringField(
        label,
        validators=[
            DataRequired(missing),
            Regexp(handles.TYPED_HANDLE, message="An X username is 1 to 15 letters, digits or underscores."),
        ],
        filters=[lambda v: handles.typed(v) if isinstance(v, str) else v],
    )
