"""The judge behind an OpenAI-compatible server: top-k log-probabilities at the score or verdict
token, truncation flagged. The server is a small fake written here (http.server, 127.0.0.1)."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backends.base import SamplingParams
from backends.openai_compat import OpenAICompatLM
from core.errors import ConfidantError
from judge.config import JudgeConfig
from judge.grading import grade, rating_position, top_k_distribution
from judge.pairwise import compare


def _position(token: str, logprob: float, alternatives: dict[str, float] | None = None) -> dict:
    alts = alternatives or {token: logprob}
    return {
        "token": token,
        "logprob": logprob,
        "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alts.items()],
    }


SCORE_ALTS = {"4": -0.3, "5": -1.6, "3": -3.0, "four": -4.0, " 4": -5.0, "9": -6.0}


def _reply(prompt: str) -> list[dict]:
    if "Verdict" in prompt:
        good_first = prompt.index("GOOD") < prompt.index("BAD")
        letter, other = ("A", "B") if good_first else ("B", "A")
        alts = {letter: -0.2, other: -2.0, "C": -3.5, "The": -4.0}
        return [
            _position("Clear", -0.5),
            _position(".\n", -0.1),
            _position("Verdict", -0.05),
            _position(":", -0.01),
            _position(" [", -0.02),
            _position(letter, -0.2, alts),
            _position("]", -0.01),
        ]
    if "NOSCORE" in prompt:
        return [_position("I", -0.3), _position(" cannot", -0.4), _position(" say", -0.2)]
    if "SPLIT" in prompt:  # a tokenizer that writes 57 as "5" "7"
        return [
            _position("Score", -0.1),
            _position(":", -0.01),
            _position(" [", -0.02),
            _position("5", -0.4, {"5": -0.4, "6": -1.2}),
            _position("7", -0.3, {"7": -0.3, "0": -1.5}),
            _position("]", -0.01),
        ]
    return [
        _position("Fine", -0.7),
        _position(".\n", -0.2),
        _position("Score", -0.1),
        _position(":", -0.01),
        _position(" [", -0.02),
        _position("4", -0.3, SCORE_ALTS),
        _position("]", -0.01),
    ]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.path.endswith("/chat/completions"):  # a chat API: no echo, no /tokenize
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.requests.append({"path": self.path, "body": body})
        content = _reply(body["messages"][-1]["content"])
        data = {
            "choices": [
                {
                    "index": 0,
                    "message": {"content": "".join(c["token"] for c in content)},
                    "logprobs": {"content": content},
                    "finish_reason": "stop",
                }
            ]
        }
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def lm(server):
    return OpenAICompatLM(f"http://127.0.0.1:{server.server_address[1]}/v1", "fake-judge")


def test_sample_with_top_keeps_every_alternative(lm, server):
    g = lm.sample_with_top("Q", SamplingParams(temperature=0.0), top_logprobs=20)[0]
    assert len(g.tokens[5].top) == len(SCORE_ALTS) > 5 and g.truncated
    body = server.requests[-1]["body"]
    assert body["top_logprobs"] == 20 and body["logprobs"] is True
    with pytest.raises(ConfidantError, match="between 1 and 20"):
        lm.sample_with_top("Q", SamplingParams(), top_logprobs=21)


def test_grading_reads_the_top_k_at_the_score_token(lm, server):
    r = grade(lm, "Why?", "Because.", JudgeConfig(scale=5))
    assert r.source == "top_logprobs" and r.truncated
    assert r.emitted == 4 and next(iter(r.raw)) == 4
    # " 4" is merged into "4" (whitespace markers cleaned); "four" and 9 (off the scale) dropped.
    assert r.raw == pytest.approx(
        {4: math.exp(-0.3) + math.exp(-5.0), 5: math.exp(-1.6), 3: math.exp(-3.0)}
    )
    assert r.summary.first == 4 and r.summary.mass < 1.0
    assert r.summary.geval == pytest.approx(sum(v * p for v, p in r.raw.items()))
    assert any("top-20" in n for n in r.notes)
    assert server.requests[-1]["body"]["top_logprobs"] == 20


def test_a_reply_without_a_single_token_score_is_unscored(lm):
    none = grade(lm, "NOSCORE?", "x", JudgeConfig(scale=5))
    assert none.summary is None and none.emitted is None and none.score("trustjudge") is None
    assert none.scores() == {"scale": 5, "scored": False}
    split = grade(lm, "SPLIT?", "x", JudgeConfig(scale=100))
    assert split.summary is None and any("single-token" in n for n in split.notes)


def test_pairwise_over_http_uses_both_orders(lm):
    pr = compare(lm, "Which?", "GOOD answer", "BAD answer", JudgeConfig())
    assert pr.first.emitted == "A" and pr.second.emitted == "B"
    assert pr.relations == {"baseline": 1, "likelihood": 1, "ppl": 0}  # equal perplexities
    assert pr.first.truncated and pr.first.source == "top_logprobs"
    expected = math.exp((0.5 + 0.1 + 0.05 + 0.01 + 0.02 + 0.2 + 0.01) / 7)
    assert pr.first.perplexity == pytest.approx(expected)
    assert pr.first.raw == pytest.approx(
        {"A": math.exp(-0.2), "B": math.exp(-2.0), "C": math.exp(-3.5)}
    )


def test_top_k_sums_above_one_from_rounding_are_renormalised():
    from backends.base import TokenRecord

    rounded = [
        TokenRecord(text=" [", logprob=0.0, entropy=0.0, varentropy=0.0),
        TokenRecord(
            text="5", logprob=0.0, entropy=0.0, varentropy=0.0, top=[("5", 1.0), ("4", 0.01)]
        ),
        TokenRecord(text="]", logprob=0.0, entropy=0.0, varentropy=0.0),
    ]
    produced, dist = top_k_distribution(rounded, ["4", "5"])
    assert produced == "5" and sum(dist.values()) == pytest.approx(1.0)


def test_rating_position_takes_the_last_bracketed_value():
    from backends.base import TokenRecord

    def tok(text):
        return TokenRecord(text=text, logprob=-0.1, entropy=0.0, varentropy=0.0)

    tokens = [tok(t) for t in [" [", "2", "]", " then", " [", "5", "]"]]
    assert rating_position(tokens, ["2", "5"]) == 5
    assert rating_position(tokens, ["2"]) == 1
    assert rating_position([tok(" ["), tok("7"), tok("]")], ["1", "2"]) is None
    assert top_k_distribution([tok("x")], ["1"]) == (None, {})
