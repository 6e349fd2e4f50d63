"""Sentiment: how a text feels (VADER, or a model trained on labelled files and kept in the registry),
the live mix of a hashtag or query, and the month-by-month mix on an account's page."""

from __future__ import annotations

from flask import Flask


def register(app: Flask, api) -> None:
    from twitapp.sentiment import api as sentiment_api
    from twitapp.sentiment import cli, jobs, routes  # noqa: F401  (jobs registers its handler)
    from twitapp.web import panels

    app.register_blueprint(routes.bp)
    api.add(sentiment_api.bp)
    panels.add(app, "account.summary", routes.account_mix)
    app.cli.add_command(cli.commands)
