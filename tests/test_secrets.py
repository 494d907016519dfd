"""The API key and a server URL's credentials never appear in a message, a page, ``/config``,
a log line, the database or an export, in any escaping and of any length
(:mod:`core.secrets`), tested against a server that echoes them back in every way."""

from __future__ import annotations

import argparse
import html
import json
import logging
import secrets
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import pytest

import app as app_module
import core.secrets
from backends.base import SamplingParams
from backends.openai_compat import OpenAICompatLM
from core.errors import BackendError
from core.secrets import RedactingFilter, redact, register, safe_url
from store.export import export_runs_csv
from tests.backends.fake_openai import FakeOpenAI
from tests.helpers import free_port, serving
from ui.app import build_app
from ui.context import models_line


@pytest.fixture(autouse=True)
def own_secrets(monkeypatch):
    """Secrets registered here (one is a single letter) are forgotten after each test."""
    monkeypatch.setattr(core.secrets, "_registered", set())


def every_form(secret: str) -> list[str]:
    return [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        quote(secret, safe=""),
        quote_plus(secret),
        html.escape(secret),
    ]


@pytest.mark.parametrize("secret", ["k", "k9/", "sk-a/b+c=d&e\"f'g<h>", "ключ/ü"])
def test_a_secret_of_any_length_is_redacted_in_every_escaping(secret):
    register(secret)
    for form in every_form(secret):
        out = redact(f"before {form} after")
        assert form not in out and "[redacted]" in out, form


def test_credentials_are_removed_from_every_url():
    assert safe_url("http://bob:p%40ss@10.0.0.1:8000/v1?x=1") == "http://10.0.0.1:8000/v1?x=1"
    assert safe_url("https://[::1]:9/v1") == "https://[::1]:9/v1"
    assert redact("see https://u:pw@h/v1 and ftp://x@y") == "see https://h/v1 and ftp://y"


def test_log_records_are_redacted():
    key = "sk-" + secrets.token_hex(8)
    register(key)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent %s", (key,), None)
    RedactingFilter().filter(record)
    assert key not in record.getMessage() and "[redacted]" in record.getMessage()


@pytest.mark.parametrize("key", ["k7", "sk/" + secrets.token_hex(20)])
def test_a_server_that_echoes_the_key_in_every_way_shows_none_of_it(key, monkeypatch):
    monkeypatch.setenv("CONFIDANT_OPENAI_API_KEY", key)
    with FakeOpenAI() as server:
        server.mode = "echo-every-way"
        lm = OpenAICompatLM(server.url, "served")
        with pytest.raises(BackendError) as failed:
            lm.sample("hi", SamplingParams(n=1, max_new_tokens=4))
        assert server.requests[0]["auth"] == f"Bearer {key}"  # the key really went out
    message = str(failed.value)
    assert "HTTP 401" in message and "[redacted]" in message
    for form in every_form(key):
        assert form not in message, form
    # The unredacted original is not chained for a traceback to print.
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


def test_url_credentials_reach_no_page_config_message_database_or_export(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    user, password = "deploy", "pw/" + secrets.token_hex(6)
    with FakeOpenAI() as server:
        parts = urlsplit(server.url)
        url = f"http://{user}:{quote(password, safe='')}@{parts.netloc}{parts.path}"
        args = app_module.parse_args(
            ["--openai-base-url", url, "--model", "served", "--db", str(tmp_path / "c.db")]
        )
        ctx, _ = app_module.make_context(args)
        lm = ctx.backends.generator()
        lm.sample("hi", SamplingParams(n=1, max_new_tokens=4))
        assert server.requests[-1]["auth"].startswith("Basic ")  # the credentials were used
        server.mode = "echo-every-way"
        with pytest.raises(BackendError) as failed:
            lm.sample("hi", SamplingParams(n=1, max_new_tokens=4))
        assert "HTTP 401" in str(failed.value)
        demo = build_app(ctx)
        options = app_module.launch_options(
            argparse.Namespace(host="127.0.0.1", port=free_port()), None
        )
        with serving(demo, **options) as page_url:
            page = httpx.get(page_url).text
            config = httpx.get(page_url + "config").text
        from store.runs import save_run

        save_run(
            ctx.store,
            kind="trace",
            model=ctx.backends.describe()["generator"],
            params={},
            result={},
        )
        export = export_runs_csv(ctx.store)
        ctx.store.close()
    assert parts.netloc in models_line(ctx.backends)
    seen = {
        "message": str(failed.value),
        "models line": models_line(ctx.backends),
        "page": page,
        "/config": config,
        "log": caplog.text,
        "export": open(export, encoding="utf-8").read(),
        "database": b"".join(p.read_bytes() for p in tmp_path.glob("c.db*")).decode("latin-1"),
    }
    for where, text in seen.items():
        for form in every_form(password):
            assert form not in text, f"the password is in the {where} as {form!r}"
        assert f"{user}:" not in text and f"{user}%3A" not in text, where
