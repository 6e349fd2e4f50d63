"""A Mastodon status's HTML as the plain text a reader sees: what ``mastodon.html_to_text`` re-exports."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from twitapp.sources.records import clean_text


class _TextCollector(HTMLParser):
    """The text a reader sees in a status's HTML, paragraphs and line breaks kept."""

    BLOCKS = frozenset({"p", "blockquote", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.gap = ""  # the break owed before the next text
        self.spans: list[bool] = []  # for each open span, whether it is an "ellipsis" one
        self.hidden = 0  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("script", "style"):
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.gap = "\n" if tag == "li" and not self.gap else "\n\n"
        elif tag == "br" and self.parts and not self.gap:
            self.parts.append("\n")
        elif tag == "span":
            self.spans.append("ellipsis" in (attributes.get("class") or "").split())
        elif tag == "img" and re.fullmatch(r":\w+:", attributes.get("alt") or ""):
            self.handle_data(attributes["alt"] or "")  # a custom emoji some servers send as an image

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS and tag != "li":
            self.gap = "\n\n"
        elif tag == "span" and self.spans:
            self.spans.pop()

    def handle_data(self, data: str) -> None:
        data = re.sub(r"\s+", " ", data)
        if self.spans and self.spans[-1]:
            data = data.rstrip("…")  # the ellipsis a stylesheet draws, should a server write it out
        if self.hidden or not data:
            return
        if self.gap and self.parts:
            self.parts.append(self.gap)
        self.gap = ""
        self.parts.append(data)


def html_to_text(html: str) -> str:
    """A status's HTML as plain text: paragraphs apart by a blank line, ``<br>`` a line break, links and
    mentions as their full text, entities unescaped, custom emoji as their ``:shortcode:``."""
    collector = _TextCollector()
    collector.feed(html or "")
    collector.close()
    text = "\n".join(line.strip(" ") for line in "".join(collector.parts).split("\n"))
    return clean_text(re.sub(r"\n{3,}", "\n\n", text)).strip()
