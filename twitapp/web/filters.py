"""Template filters shared by every page (and the command line, which prints the same figures)."""

from __future__ import annotations

from flask import Flask

UNKNOWN = "—"


def format_count(value: int | None) -> str:
    """A count with its thousands marked; "—" for one the source did not give (unknown is not 0)."""
    return UNKNOWN if value is None else f"{value:,}"


def format_percent(probability: float) -> str:
    """A probability as a person reads it: one decimal, and no false certainty at either end."""
    if probability >= 0.9995:
        return ">99.9%"
    if probability < 0.0005:
        return "<0.1%"
    return f"{probability * 100:.1f}%"


def init_app(app: Flask) -> None:
    app.add_template_filter(format_count, "count")
    app.add_template_filter(format_percent, "percent")
