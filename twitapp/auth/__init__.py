"""Operators and visitors.

Operators run a deployment: they add, update, import, restore, export and delete accounts and train
models. Visitors only ask questions of what is stored. Pages know an operator by the signed session
cookie (Flask-Login, after ``/signin``); the JSON API only by ``Authorization: Bearer TOKEN``, never by
the cookie, so a page on another site cannot make a signed-in browser call it (the API carries no CSRF
token). Where ``SIGN_IN_REQUIRED`` is off (``make run`` on 127.0.0.1), every caller is an operator.
"""

from __future__ import annotations

from flask import Flask

from twitapp.auth.operators import is_operator, operator_required, sign_in_required, sign_in_url

__all__ = ["init_app", "operator_required"]


def init_app(app: Flask) -> None:
    from twitapp.auth import cli, routes
    from twitapp.extensions import login_manager

    login_manager.init_app(app)
    app.register_blueprint(routes.bp)
    app.context_processor(
        lambda: {"is_operator": is_operator, "sign_in_required": sign_in_required, "sign_in_url": sign_in_url}
    )
    app.cli.add_command(cli.operator_cli)
