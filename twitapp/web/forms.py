"""Form pieces every capability uses: a button that only carries its CSRF token, and typed handles."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Regexp, ValidationError

from twitapp.sources import handles


class ButtonForm(FlaskForm):
    """A button that starts something (a job, a fetch, a deletion); the form only carries its CSRF token."""


def any_handle(form, field) -> None:
    """A handle of any network (``handles.parse``); the field's data becomes the full handle, and
    ``field.handle`` the parsed one, whose network the page names."""
    try:
        field.handle = handles.parse(field.data or "")
    except handles.HandleError as exc:
        raise ValidationError(str(exc)) from None
    field.data = field.handle.name


def handle_field(label: str, missing: str) -> StringField:
    """A handle of X, Bluesky or Mastodon as a person types or pastes it (see ``handles``)."""
    return StringField(label, validators=[DataRequired(missing), any_handle], filters=[_stripped])


def _stripped(value):
    return value.strip() if isinstance(value, str) else value


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
