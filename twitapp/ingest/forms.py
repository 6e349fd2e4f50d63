"""The forms that bring posts in: an account to fetch, a file to import, an export to restore."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField

from twitapp.web.forms import handle_field, username_field


class AddAccountForm(FlaskForm):
    """An account of X, Bluesky or Mastodon, by the handle its form says the network of."""

    username = handle_field("Handle", "Type the handle of the account to add.")


class ImportForm(FlaskForm):
    """A file of one account's posts (an archive's tweets.js, with its account.js if sent too; JSONL; CSV)."""

    username = username_field("Account", "Type the username the posts belong to.")
    files = MultipleFileField("File of posts")


class RestoreForm(FlaskForm):
    """A file from "Download every account and post" (or `flask export`) to store back."""

    file = FileField("Export file")
