"""Reading a page's HTML as a browser would send it: the fields of one of its forms."""

from __future__ import annotations

import html
import re


def form_fields(page: str, form_id: str) -> dict[str, list[str]]:
    """Each named input of the form with this id, and the values it would send (in order)."""
    form = re.search(rf'<form\b[^>]*\bid="{form_id}"[^>]*>(.*?)</form>', page, re.S)
    assert form, f"no form with id {form_id!r} on the page"
    fields: dict[str, list[str]] = {}
    for tag in re.findall(r"<input\b[^>]*>", form.group(1)):
        name, value = re.search(r'\bname="([^"]*)"', tag), re.search(r'\bvalue="([^"]*)"', tag)
        if name:
            fields.setdefault(html.unescape(name.group(1)), []).append(html.unescape(value.group(1) if value else ""))
    return fields
