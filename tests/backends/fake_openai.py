"""A small server on 127.0.0.1 that speaks the OpenAI protocol, logprobs fields included.

Its "model" answers with fixed tokens and log-probabilities so tests can check every field the
backend fills. ``mode`` switches it to failure behaviours (HTTP 500, a slow answer, bad JSON,
a 401 whose message quotes the Authorization header it was sent, and one that quotes the key
or the URL's user and password in every escaping).
"""

from __future__ import annotations

import base64
import html
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus

TOKENS = ["Paris", " is", " the", " capital", "."]
LOGPROBS = [-0.1, -0.5, -0.05, -1.2, -0.3]


def top_for(i: int) -> list[tuple[str, float]]:
    chosen = LOGPROBS[i]
    return [(TOKENS[i], chosen), ("Lyon", chosen - 1.5), ("Rome", chosen - 2.0)]


class FakeOpenAI:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict] = []
        self.delay_s = 0.0  # every request waits this long (a GPU server's queue and network)
        self.fail_next = 0  # the next N requests get ``fail_status`` (then it recovers)
        self.fail_status = 503
        self.retry_after: str | None = "0"
        self.in_flight = 0
        self.peak_in_flight = 0
        self.fail_when: str | None = None  # a request whose prompt holds this text gets HTTP 500
        self._count = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
                )
                outer.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                with outer._count:
                    outer.in_flight += 1
                    outer.peak_in_flight = max(outer.peak_in_flight, outer.in_flight)
                    failing = outer.fail_next > 0
                    outer.fail_next -= int(failing)
                try:
                    if outer.delay_s:
                        time.sleep(outer.delay_s)
                    if failing:
                        headers = {"Retry-After": outer.retry_after} if outer.retry_after else {}
                        return self._send(outer.fail_status, {"error": "busy"}, headers)
                    if outer.fail_when and outer.fail_when in json.dumps(body):
                        return self._send(500, {"error": {"message": "this one failed"}})
                    return self._answer(body)
                finally:
                    with outer._count:
                        outer.in_flight -= 1

            def _answer(self, body):
                if outer.mode == "500":
                    return self._send(500, {"error": {"message": "internal error"}})
                if outer.mode == "echo-auth":  # an error reply that quotes the credentials
                    auth = self.headers.get("Authorization")
                    return self._send(401, {"error": {"message": f"invalid credentials {auth}"}})
                if outer.mode == "echo-every-way":  # the credentials in every escaping
                    return self._echo_every_way()
                if outer.mode == "slow":
                    time.sleep(2.0)
                if outer.mode == "garbage":
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"not json")
                    return None
                if self.path.endswith("/chat/completions"):
                    return self._send(200, outer.chat(body))
                if self.path.endswith("/completions"):
                    return self._send(200, outer.completion(body))
                return self._send(404, {"error": "not found"})

            def _echo_every_way(self):
                auth = self.headers.get("Authorization") or ""
                secrets = [auth.removeprefix("Bearer ")]
                if auth.startswith("Basic "):
                    secrets = base64.b64decode(auth[6:]).decode().split(":", 1)
                forms = []
                for s in secrets:
                    forms += [s, json.dumps(s)[1:-1].replace("/", "\\/"), quote(s, safe="")]
                    forms += [quote_plus(s), html.escape(s)]
                # The first form sits at the very start, before any cut of a long reply.
                text = " ".join(forms) + " " + "x" * 400 + " " + " ".join(forms)
                data = ('{"error": "bad credentials ' + text + '"}').encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def chat(self, body: dict) -> dict:
        k = int(body.get("top_logprobs") or 0)
        n = int(body.get("n") or 1)
        content = [
            {
                "token": t,
                "logprob": LOGPROBS[i],
                "bytes": list(t.encode()),
                "top_logprobs": [
                    {"token": a, "logprob": lp, "bytes": None} for a, lp in top_for(i)[:k]
                ],
            }
            for i, t in enumerate(TOKENS)
        ]
        return {
            "id": "x",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [
                {
                    "index": j,
                    "message": {"role": "assistant", "content": "".join(TOKENS)},
                    "logprobs": {"content": content},
                    "finish_reason": "stop",
                }
                for j in range(n)
            ],
        }

    def completion(self, body: dict) -> dict:
        prompt = body.get("prompt", "")
        # Echo: one "token" per character of the prompt, log p = −0.1 × (index mod 7 + 1).
        if body.get("echo"):
            toks = list(prompt)
            lps = [None] + [-0.1 * ((i % 7) + 1) for i in range(1, len(toks))]
            offsets = list(range(len(toks)))
            return {
                "choices": [
                    {
                        "index": 0,
                        "text": prompt,
                        "logprobs": {
                            "tokens": toks,
                            "token_logprobs": lps,
                            "text_offset": offsets,
                            "top_logprobs": None,
                        },
                        "finish_reason": "length",
                    }
                ]
            }
        k = int(body.get("logprobs") or 0)
        return {
            "choices": [
                {
                    "index": 0,
                    "text": "".join(TOKENS),
                    "logprobs": {
                        "tokens": TOKENS,
                        "token_logprobs": LOGPROBS,
                        "top_logprobs": [dict(top_for(i)[:k]) for i in range(len(TOKENS))],
                        "text_offset": [
                            sum(len(t) for t in TOKENS[:i]) for i in range(len(TOKENS))
                        ],
                    },
                    "finish_reason": "length",
                }
            ]
        }


def expected_truncated_entropy(i: int, k: int) -> float:
    return -sum(math.exp(lp) * lp for _, lp in top_for(i)[:k])
