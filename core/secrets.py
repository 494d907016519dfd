"""Secrets this process holds, and redaction of them from any text that leaves it.

An API key or a password in a server URL must never reach a page, ``/config``, a message, a log
line, the database or an export. A server's error reply may quote the key in any escaping — as
sent, JSON-escaped (``\\/`` for ``/``, ``\\u00..`` for the rest), URL-encoded, HTML-escaped — so
each secret is redacted in every one of those forms, whatever its length. Credentials written in
a URL (``http://user:pass@host/…``) are removed from every URL in the text too.

Secrets come from the API-key environment variables (read each time: a test or a Space may set
them late) and from :func:`register`, which the backends call with the credentials of the URLs
they are given.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import threading
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

SECRET_ENV = ("CONFIDANT_OPENAI_API_KEY", "OPENAI_API_KEY")
MARK = "[redacted]"

_registered: set[str] = set()
_lock = threading.Lock()
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#\"'<>]*@")


def register(secret: str | None) -> None:
    """Remember ``secret`` (a key or a password) so that :func:`redact` removes it."""
    if secret:
        with _lock:
            _registered.add(secret)


def url_credentials(url: str | None) -> list[str]:
    """The user name and password written in ``url`` (decoded), if any."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    return [unquote(p) for p in (parts.username, parts.password) if p]


def url_auth(url: str | None) -> tuple[str, str] | None:
    """(user, password) written in ``url``, decoded, for HTTP basic auth; None without."""
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return None
    if not (parts.username or parts.password):
        return None
    return unquote(parts.username or ""), unquote(parts.password or "")


def register_url(url: str | None) -> None:
    """Remember the credentials written in ``url``."""
    for part in url_credentials(url):
        register(part)


def safe_url(url: str | None) -> str:
    """``url`` without the ``user:password@`` part (for display, logs and storage)."""
    if not url:
        return url or ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_USERINFO.sub(r"\1", url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def held_secrets() -> list[str]:
    """Every secret this process holds, longest first (so a key containing another goes whole)."""
    found = {os.environ.get(name) or "" for name in SECRET_ENV}
    with _lock:
        found |= _registered
    return sorted((s for s in found if s), key=len, reverse=True)


def _forms(secret: str) -> list[str]:
    """``secret`` as it may be written back: raw, JSON-escaped (both ways), URL-encoded,
    HTML-escaped."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    forms |= {f.lower() for f in forms if "%" in f}  # percent-encoding in lower case
    return sorted((f for f in forms if f), key=len, reverse=True)


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """``text`` with every secret held (and ``extra``) replaced by ``[redacted]``, in every
    escaping, and with credentials removed from every URL in it.

    >>> register("s3cr/t")
    >>> redact('{"error": "bad key s3cr\\\\/t"} at http://bob:pw@host/v1')
    '{"error": "bad key [redacted]"} at http://host/v1'
    """
    if not text:
        return text
    text = str(text)
    for secret in sorted({*held_secrets(), *(e for e in extra if e)}, key=len, reverse=True):
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, MARK)
    return _URL_USERINFO.sub(r"\1", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message (and its traceback text) before
    any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is left to logging's own report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def redact_logs(logger: logging.Logger | None = None) -> None:
    """Add :class:`RedactingFilter` to every handler of ``logger`` (the root logger by
    default), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
