"""Panels: how a capability adds a section to a page the shell owns, without that page importing it.

A capability registers, in its ``register(app)``, a function for a named slot of a shared page
(``home``, ``accounts``, ``account``, ``models``). The page calls ``panels(slot, **context)`` from its
template; every function for that slot gets the same context and returns its HTML (usually its own
template, rendered) or nothing. A page re-rendered with a refused form passes the form in ``forms``, so the
panel that owns it shows its errors.

A panel whose button starts a job names that job's kinds (``jobs``): it shows the job's progress itself,
where the button was pressed, and the page does not show it again at the top. A panel with an ``anchor``
(its section's id and a title) is listed in the page's row of links to its sections.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from markupsafe import Markup

Panel = Callable[..., str | None]


def add(
    app: Flask,
    slot: str,
    panel: Panel,
    order: int = 50,
    jobs: tuple[str, ...] = (),
    anchor: tuple[str, str] | None = None,
) -> None:
    """Show ``panel`` in ``slot`` of this app's shared pages, lower ``order`` first; ``jobs``: the kinds of
    job whose progress it shows; ``anchor``: (its section's id, a title) for the page's links."""
    slots = app.extensions.setdefault("panels", {})
    slots.setdefault(slot, []).append((order, panel))
    slots[slot].sort(key=lambda entry: entry[0])
    app.extensions.setdefault("panel_jobs", {}).setdefault(slot, set()).update(jobs)
    if anchor is not None:
        app.extensions.setdefault("panel_anchors", {}).setdefault(slot, []).append((order, anchor))
        app.extensions["panel_anchors"][slot].sort(key=lambda entry: entry[0])


def shows_job(job: dict | None, *slots: str) -> bool:
    """Whether a panel of one of these slots shows this job's progress (so the page need not)."""
    claimed = current_app.extensions.get("panel_jobs", {})
    return job is not None and any(job["kind"] in claimed.get(slot, ()) for slot in slots)


def anchors(*slots: str) -> list[tuple[str, str]]:
    """(section id, title) of the panels of these slots that have one, slot by slot, in order."""
    registered = current_app.extensions.get("panel_anchors", {})
    return [anchor for slot in slots for _, anchor in registered.get(slot, [])]


def render(slot: str, **context) -> Markup:
    """The HTML of every panel registered for ``slot``, in order."""
    context.setdefault("forms", {})
    shown = (panel(**context) for _, panel in current_app.extensions.get("panels", {}).get(slot, []))
    return Markup("\n").join(Markup(html) for html in shown if html)


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(panels=render, panel_shows_job=shows_job, panel_anchors=anchors)
