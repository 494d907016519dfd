"""HTTP-level protections in front of the Gradio app (ASGI middleware, passed to FastAPI
through ``launch(app_kwargs={"middleware": ...})`` by ``app.launch_options``).

- :class:`LoginGuard`: failed logins are counted per user name and per client address; after
  ``user_failures`` failures for a name (``address_failures`` from one address) within
  ``window_s`` seconds, further attempts are refused with HTTP 429 and ``Retry-After`` for a
  delay that doubles with each further failure (``base_delay_s`` … ``max_delay_s``). The right
  password does not get through a lock-out; a success clears the name's and the address's count.
- :class:`NoEmbeddedApiInfo`: Gradio embeds its API description (endpoints, parameters, model
  names in defaults) in every HTML page, the login page included. It is removed from every
  page; a logged-in browser reads it from ``/gradio_api/info``, which needs the login.
- :class:`ExportGuard`: an export file is downloadable by its annotator only, for an hour.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qs

MAX_LOGIN_BODY = 64 * 1024


class LoginGuard:
    """ASGI middleware that slows down and locks out repeated failed logins."""

    def __init__(
        self,
        app,
        *,
        user_failures: int = 5,
        address_failures: int = 20,
        window_s: float = 900.0,
        base_delay_s: float = 30.0,
        max_delay_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = {"user": user_failures, "address": address_failures}
        self.window_s, self.base_delay_s, self.max_delay_s = window_s, base_delay_s, max_delay_s
        self.clock = clock
        self._lock = threading.Lock()
        # key → (failures within the window, time of the first, locked until)
        self._state: dict[tuple[str, str], tuple[int, float, float]] = {}

    async def __call__(self, scope, receive, send):
        if (
            scope.get("type") != "http"
            or scope.get("method") != "POST"
            or not scope.get("path", "").rstrip("/").endswith("/login")
        ):
            return await self.app(scope, receive, send)
        body, too_big = await _read_body(receive, MAX_LOGIN_BODY)
        if too_big:
            return await _reply(send, 413, {"detail": "The login form is too large."})
        keys = [("user", _username(scope, body)), ("address", client_address(scope))]
        wait = self.retry_after(keys)
        if wait > 0:
            return await _reply(
                send,
                429,
                {
                    "detail": f"Too many failed logins. Try again in {wait} s.",
                    "retry_after_s": wait,
                },
                headers=[(b"retry-after", str(wait).encode())],
            )
        status: list[int] = []

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        async def watch(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, replay, watch)
        if status and status[0] == 200:
            self.succeeded(keys)
        elif status and status[0] in (400, 401, 403):
            self.failed(keys)

    def retry_after(self, keys) -> int:
        """Seconds until any of ``keys`` may try again (0: now)."""
        now = self.clock()
        with self._lock:
            until = max((self._state.get(k, (0, now, 0.0))[2] for k in keys), default=0.0)
        return max(0, math.ceil(until - now))

    def failed(self, keys) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                count, first, until = self._state.get(key, (0, now, 0.0))
                if now - first > self.window_s and until <= now:
                    count, first = 0, now
                count += 1
                over = count - self.limits[key[0]]
                if over >= 0:
                    until = now + min(self.max_delay_s, self.base_delay_s * 2**over)
                self._state[key] = (count, first, until)
            if len(self._state) > 100_000:  # bounded: forget the oldest windows
                for key in sorted(self._state, key=lambda k: self._state[k][1])[:50_000]:
                    del self._state[key]

    def succeeded(self, keys) -> None:
        with self._lock:
            for key in keys:
                self._state.pop(key, None)


_API_INFO = re.compile(rb"window\.gradio_api_info\s*=\s*.*?;\s*</script>", re.DOTALL)


class NoEmbeddedApiInfo:
    """ASGI middleware that removes ``window.gradio_api_info = …`` from HTML pages."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        start: dict = {}
        chunks: list[bytes] = []

        async def rewrite(message):
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                if b"text/html" not in headers.get(b"content-type", b""):
                    start["pass"] = True
                    return await send(message)
                start.update(message)
                return None
            if start.get("pass") or message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return None
            body = _API_INFO.sub(b"window.gradio_api_info = null;</script>", b"".join(chunks))
            headers = [
                (k, str(len(body)).encode() if k.lower() == b"content-length" else v)
                for k, v in start.get("headers", [])
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return None

        await self.app(scope, receive, rewrite)


class ExportGuard:
    """ASGI middleware: the URL of an offered export (:mod:`ui.components.exports`) is served
    only to the annotator it was made for, and to nobody once it has expired; anyone else gets
    404, as for a file that does not exist."""

    def __init__(self, app, offers=None) -> None:
        from ui.components.exports import OFFERS

        self.app = app
        self.offers = OFFERS if offers is None else offers

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope.get("type") == "http" else ""
        if "/file=" in path:
            allowed = self.offers.may_download(path, current_user(scope))
            if allowed is False:
                return await _reply(send, 404, {"detail": "Not Found"})
        return await self.app(scope, receive, send)


def current_user(scope) -> str | None:
    """The logged-in user of an HTTP request to a Gradio app (from its login cookie), or None."""
    app = scope.get("app")
    tokens, cookie_id = getattr(app, "tokens", None), getattr(app, "cookie_id", None)
    if not tokens or cookie_id is None:
        return None
    cookies: dict[str, str] = {}
    for name, value in scope.get("headers") or []:
        if name.lower() == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                cookies.setdefault(key, val)
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    return tokens.get(token) if token else None


def client_address(scope) -> str:
    """The client's address; behind a local or private proxy, the address that proxy saw
    (the last ``X-Forwarded-For`` entry)."""
    peer = (scope.get("client") or ("?", 0))[0]
    try:
        proxied = ipaddress.ip_address(peer).is_private or ipaddress.ip_address(peer).is_loopback
    except ValueError:
        proxied = False
    if proxied:
        for name, value in scope.get("headers") or []:
            if name.lower() == b"x-forwarded-for":
                last = value.decode("latin-1").split(",")[-1].strip()
                if last:
                    return last
    return peer


def _username(scope, body: bytes) -> str:
    content_type = b""
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-type":
            content_type = value.lower()
    text = body.decode("utf-8", "replace")
    if b"multipart/form-data" in content_type:
        found = re.search(r'name="username"\r?\n\r?\n(.*?)\r?\n--', text, re.DOTALL)
        return (found.group(1) if found else "").strip().lower()
    return (parse_qs(text).get("username") or [""])[0].strip().lower()


async def _read_body(receive, limit: int) -> tuple[bytes, bool]:
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts), False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts), False


async def _reply(send, status: int, payload: dict, headers=()) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
