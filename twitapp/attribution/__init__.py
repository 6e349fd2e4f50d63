"""Author attribution, the heart of the app: which of these accounts would most likely post this text,
how far to trust the answer, and why. A logistic regression is fitted on the chosen accounts' stored
posts at request time (``model``: the request; ``recipe``: the model; ``trust``: its held-out accuracy
and temperature; ``reasons``: the why)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask, api) -> None:
    from twitapp.attribution import api as attribution_api
    from twitapp.attribution import cli, routes
    from twitapp.web import panels

    app.register_blueprint(routes.bp)
    api.add(attribution_api.bp)
    panels.add(app, "home", routes.compare_panel, order=10)
    for command in cli.commands.commands.values():
        app.cli.add_command(command)
