"""Ingest, the one way posts come in: every source's records are deduplicated, embedded (spaCy
tok2vec), hashed into n-grams and stored in one transaction (``store``), whatever the network or file.
Also here: the files a page sends, exports and restores (``backup``), and the pages, API, commands and
jobs that drive them.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask, api) -> None:
    from twitapp.ingest import api as ingest_api
    from twitapp.ingest import cli, jobs, routes  # noqa: F401  (jobs registers its handlers)
    from twitapp.web import panels

    app.register_blueprint(routes.bp)
    api.add(ingest_api.bp)
    panels.add(app, "accounts", routes.accounts_panel)
    panels.add(app, "home.after", routes.restore_job_panel)
    panels.add(app, "account.actions", routes.account_actions)
    panels.add(app, "account.links", routes.account_links)
    for command in cli.commands.commands.values():
        app.cli.add_command(command)
