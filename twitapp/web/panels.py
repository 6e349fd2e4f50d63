"""Panels: how a capability adds a section to a page the shell owns, without that page importing it.

A capability registers, in its ``register(app)``, a function for a named slot of a shared page
(``home``, ``accounts``, ``account``, ``models``). The page calls ``panels(slot, **context)`` from its
template; every function for that slot gets the same context and returns its HTML (usually its own
template, rendered) or nothing. A page re-rendered with a refused form passes the form in ``forms``, so the
panel that owns it shows its errors.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from markupsafe import Markup

Panel = Callable[..., str | None]


def add(app: Flask, slot: str, panel: Panel, order: int = 50) -> None:
    """Show ``panel`` in ``slot`` of this app's shared pages, lower ``order`` first."""
    slots = app.extensions.setdefault("panels", {})
    slots.setdefault(slot, []).append((order, panel))
    slots[slot].sort(key=lambda entry: entry[0])


def render(slot: str, **context) -> Markup:
    """The HTML of every panel registered for ``slot``, in order."""
    context.setdefault("forms", {})
    shown = (panel(**context) for _, panel in current_app.extensions.get("panels", {}).get(slot, []))
    return Markup("\n").join(Markup(html) for html in shown if html)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["panels"] = render
