"""Escaping of user, model and file text before it reaches Markdown, HTML or a plot.

Every piece of text that did not come from the project's own code — a question, an answer, a
judge item, an annotator's name, a class or question of a 20 Questions set, a note — goes
through one of these before a ``gr.Markdown``/``gr.HTML`` or a plotly hover label shows it, so
that no element from stored data is ever rendered as markup: ``<form>``, ``<img src=…>`` and
``[x](javascript:…)`` are shown as the characters they are.

- :func:`md_text`: for Markdown (paragraphs, lists, table cells): HTML-escaped, and every
  character Markdown gives a meaning to backslash-escaped; line breaks become spaces when
  ``inline`` (a table cell, a list item).
- :func:`html_text`: for HTML, error messages (Gradio shows them as HTML) and plotly hover
  labels, titles and tick labels (which take a few HTML tags, ``<a href>`` among them).
"""

from __future__ import annotations

import html
import re
from typing import Any

# ASCII punctuation that Markdown (CommonMark + GitHub tables) can read as syntax, except
# & < > which html.escape turns into entities.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:=^$])")


def md_text(value: Any, *, inline: bool = True, empty: str = "") -> str:
    """``value`` as literal text inside Markdown.

    >>> md_text('<img src=x> [a](javascript:b) *c* | d')
    '&lt;img src\\\\=x&gt; \\\\[a\\\\]\\\\(javascript\\\\:b\\\\) \\\\*c\\\\* \\\\| d'
    >>> md_text(None, empty="∅")
    '∅'
    """
    text = "" if value is None else str(value)
    if inline:
        text = " ".join(text.split())
    if not text:
        return empty
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = html.escape(text, quote=False)
    return text if inline else text.replace("\n", "  \n")


def html_text(value: Any, *, empty: str = "", quote: bool = True) -> str:
    """``value`` as literal text inside HTML or a plotly label: ``& < >`` and, unless ``quote``
    is false (text that never goes inside an attribute, such as a message), both quotes become
    entities. Quotes become numeric entities, which plotly decodes (it shows ``&quot;`` as
    written).

    >>> html_text('<a href="x">it’s ' + "'y'</a>")
    '&lt;a href=&#34;x&#34;&gt;it’s &#39;y&#39;&lt;/a&gt;'
    >>> html_text("it's <b>", quote=False)
    "it's &lt;b&gt;"
    """
    text = "" if value is None else str(value)
    if not text:
        return empty
    text = html.escape(text, quote=False)
    return text.replace('"', "&#34;").replace("'", "&#39;") if quote else text
