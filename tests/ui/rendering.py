"""What a view looks like once rendered: Markdown through a CommonMark renderer with raw HTML
on (as Gradio's Markdown keeps it), the elements that come out, and the text a person reads.

Tests compare what a person sees (the rendered text), not the escaped Markdown source, and
check that planted markup comes out as text, never as an element.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

# Elements that must never come out of stored data.
DANGEROUS = {"form", "input", "img", "a", "script", "iframe", "button", "textarea", "select"}
# The few tags plotly reads in labels that the project itself writes.
PLOTLY_OWN_TAGS = re.compile(r"</?(br|b|i|extra)>")


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def markdown_html(markdown: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def _parse(markdown: str) -> _Elements:
    parser = _Elements()
    parser.feed(markdown_html(markdown))
    parser.close()
    return parser


def markdown_text(markdown: str) -> str:
    """The text a person reads in rendered ``markdown``, white space collapsed."""
    return " ".join("".join(_parse(markdown).text).split())


def markdown_elements(markdown: str) -> set[str]:
    return set(_parse(markdown).tags)


def assert_shown_as_text(markdown: str, *planted: str) -> None:
    """``markdown`` renders no dangerous element and shows each planted string literally."""
    found = markdown_elements(markdown) & DANGEROUS
    assert not found, f"rendered {found} from {markdown!r}"
    text = markdown_text(markdown)
    for p in planted:
        assert " ".join(p.split()) in text, f"{p!r} not shown as text in {text!r}"


def assert_html_shows_text(html: str, *planted: str) -> None:
    """An HTML fragment (a message Gradio shows as HTML) holds no element and shows each
    planted string literally."""
    parser = _Elements()
    parser.feed(html)
    parser.close()
    assert not parser.tags, f"{parser.tags} in {html!r}"
    for p in planted:
        assert p in "".join(parser.text)


def assert_plotly_label_inert(label: str) -> None:
    """A plotly label holds no tag but the project's own (plotly renders <a href>, <b>...)."""
    assert "<" not in PLOTLY_OWN_TAGS.sub("", str(label)), label


def figure_labels(fig) -> list[str]:
    """Every hover text, text, tick label, trace name and title of a plotly figure."""
    out: list[str] = []

    def flat(value):
        if value is None:
            return
        if isinstance(value, str):
            out.append(value)
        elif hasattr(value, "__iter__"):
            for v in value:
                flat(v)

    for trace in fig.data:
        for key in ("hovertext", "text", "name", "x", "y", "hovertemplate"):
            flat(getattr(trace, key, None))
    layout = fig.layout.to_plotly_json()
    flat([(layout.get("title") or {}).get("text")])
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            flat(axis.get("ticktext"))
            flat([(axis.get("title") or {}).get("text")])
    for note in layout.get("annotations", []):
        flat([note.get("text")])
    return out
