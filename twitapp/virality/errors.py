"""The virality capability's failures meant for a person: each a ``twitapp.errors.UserError``, whose
message the pages, the API, the commands and the job runner show as it is."""

from __future__ import annotations

from twitapp.errors import UserError


class ViralityError(UserError, ValueError):
    """The request cannot be answered as asked; the message says what to change."""


class NoViralityModel(ViralityError):
    """No model is in service yet (or the champion's bytes no longer match their hash)."""
