"""Style: posts written the way an account writes, by a character-level model trained on its posts
(Kneser-Ney, or an LSTM where PyTorch is installed), none copying a real post."""

from __future__ import annotations

from flask import Flask


def register(app: Flask, api) -> None:
    from twitapp.style import api as style_api
    from twitapp.style import cli, jobs, routes  # noqa: F401  (jobs registers its handler)
    from twitapp.style.model import KIND, TRAIN_JOB
    from twitapp.web import panels
    from twitapp.web.api import add_model_kind

    app.register_blueprint(routes.bp)
    api.add(style_api.bp)
    add_model_kind(app, KIND)
    panels.add(app, "account", routes.account_panel, jobs=(TRAIN_JOB,), anchor=("style", "Write like"))
    panels.add(app, "models", routes.models_panel)
    app.cli.add_command(cli.commands)
