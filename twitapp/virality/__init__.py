"""Virality: will a post get likes? A model trained on the stored posts, versioned in the registry, and
promoted only when a challenger beats the champion in service on the newest posts."""

from __future__ import annotations

from flask import Flask


def register(app: Flask, api) -> None:
    from twitapp.virality import api as virality_api
    from twitapp.virality import cli, jobs, routes  # noqa: F401  (jobs registers its handlers)
    from twitapp.virality.model import KIND
    from twitapp.web.api import add_model_kind

    app.register_blueprint(routes.bp)
    api.add(virality_api.bp)
    add_model_kind(app, KIND)
    app.cli.add_command(cli.commands)
    for command in cli.top.commands.values():
        app.cli.add_command(command)
