"""Security with login on: no page and no API endpoint answers without it; an annotator cannot
export as another; API keys never reach the database, the exports or the logs; exports go to
fresh temporary directories and the file routes serve nothing outside Gradio's own folders.

The app is launched in-process with ``app.launch_options`` (the keyword arguments
``python app.py`` launches with) and every route of its FastAPI app is requested without a login.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest
from gradio_client import Client, handle_file
from starlette.routing import Mount

import app as app_module
from backends.base import Generation, TokenRecord
from backends.registry import BackendConfig, Backends
from store.db import Store
from store.export import EXPORT_TTL_S, export_dir, export_runs_csv, sweep_exports
from store.judgements import export_judgements, save_judgement
from store.runs import save_run
from tests.backends.fake_openai import FakeOpenAI
from tests.helpers import free_port, serving
from ui.app import build_app
from ui.context import AppContext, annotator_of, redact
from ui.tabs.generate import GenerateHandlers

USERS = [("alice", "pw-alice"), ("bob", "pw-bob")]
SENTINEL = "sentinel-" + secrets.token_hex(6)  # stored data no anonymous answer may contain

# Routes that answer without a login, each with the reason that is acceptable. Every other route
# of the app must refuse (401/403, or a redirect to the login page).
PUBLIC = {
    ("GET", "/"): "the login page (checked below to carry no app data)",
    ("HEAD", "/"): "the login page",
    ("POST", "/login"): "the login form's target",
    ("POST", "/login/"): "the login form's target",
    ("GET", "/logout"): "a redirect to the login page",
    ("GET", "/svelte/{path:path}"): "Gradio's front-end bundle (static)",
    ("GET", "/static/{path:path}"): "Gradio's static files",
    ("GET", "/assets/{path:path}"): "Gradio's static files",
    ("GET", "/favicon.ico"): "static icon",
    ("GET", "/theme.css"): "the theme's stylesheet",
    ("GET", "/gradio_api/theme.css"): "the theme's stylesheet",
    ("GET", "/robots.txt"): "static text",
    ("GET", "/pwa_icon"): "static icon",
    ("GET", "/pwa_icon/{size}"): "static icon",
    ("GET", "/manifest.json"): "the web-app manifest (app title and icons)",
    ("GET", "/gradio_api/custom_component/{id}/{environment}/{type}/{file_name}"): (
        "front-end code of custom components (the app has none)"
    ),
    ("GET", "/gradio_api/user"): "the caller's own login: null without one",
    ("GET", "/gradio_api/user/"): "the caller's own login: null without one",
    ("GET", "/gradio_api/token"): "the caller's own token: null without a login",
    ("GET", "/gradio_api/token/"): "the caller's own token: null without a login",
    ("GET", "/gradio_api/app_id"): "a random number identifying this process",
    ("GET", "/gradio_api/app_id/"): "a random number identifying this process",
    ("GET", "/gradio_api/startup-events"): "whether start-up events ran (true/false)",
    ("GET", "/monitoring/{key}"): "needs the secret monitoring key (403 without it)",
    ("GET", "/gradio_api/heartbeat/{session_hash}"): (
        "keeps a session alive; acts only on a random session id the caller already holds"
    ),
    ("POST", "/gradio_api/cancel"): "acts only on random session and event ids",
    ("POST", "/gradio_api/reset"): "a no-op in Gradio 6",
    ("POST", "/gradio_api/reset/"): "a no-op in Gradio 6",
    ("POST", "/gradio_api/stream/{event_id}"): "acts only on a random event id (404 otherwise)",
    ("POST", "/gradio_api/stream/{event_id}/close"): "acts only on a random event id",
    ("GET", "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist.m3u8"): (
        "media streams of a random session id (the app streams no media)"
    ),
    ("GET", "/gradio_api/stream/{session_hash}/{run}/{component_id}/{segment_id}.{ext}"): (
        "media streams of a random session id (the app streams no media)"
    ),
    ("GET", "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist-file"): (
        "media streams of a random session id (the app streams no media)"
    ),
}
# Features that are off: Gradio's editor (403 unless started with --vibe) and the run-history
# page (404: app.py launches with run_history=False).
SWITCHED_OFF = {
    re.compile(r"^/gradio_api/(undo-)?vibe-"): 403,
    re.compile(r"^/gradio_api/runs/?$"): 404,
}

PATH_VALUES = {
    "path": "x.js",
    "path_or_url": "/etc/passwd",
    "api_name": "generate",
    "event_id": "0" * 32,
    "session_hash": "abcdefghijk",
    "size": "192",
    "key": "not-the-key",
    "url_path": "https://example.com/x",
    "id": "x",
    "environment": "client",
    "type": "x",
    "file_name": "x.js",
    "run": "0",
    "component_id": "1",
    "segment_id": "0",
    "ext": "ts",
    "endpoint": "generate",
    "record_id": "x",
    "asset_id": "x",
}
POST_BODY = {
    "data": [],
    "fn_index": 0,
    "session_hash": "abcdefghijk",
    "event_id": "0" * 32,
    "event_data": None,
    "trigger_id": None,
    "prompt": "x",  # what Gradio's editor routes read
    "code": "",
    "hash": "x",
}


def routes_of(app) -> list[tuple[str, str]]:
    """(method, path template) of every route, included routers and mounts walked."""
    found = []

    def walk(routes, prefix=""):
        for r in routes:
            if isinstance(r, Mount):
                walk(getattr(r.app, "routes", None) or [], prefix + r.path)
            elif hasattr(r, "original_router"):  # FastAPI's included router
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            else:
                for method in sorted(getattr(r, "methods", None) or ["GET"]):
                    found.append((method, prefix + r.path))

    walk(app.routes)
    return found


def fill(template: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES[m.group(1)], template)


def tokens(text: str) -> list[TokenRecord]:
    return [TokenRecord(text=text, logprob=-0.5, entropy=1.0, varentropy=0.2)]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_lm_dir):
    """The app with login on, a stored run and judgements by alice and bob."""
    folder = tmp_path_factory.mktemp("secure")
    store = Store(folder / "confidant.db")
    save_run(
        store,
        kind="trace",
        model="m",
        params={},
        result={"question": SENTINEL},
        generations=[("answer", Generation(text=SENTINEL, tokens=tokens(SENTINEL)))],
        title=SENTINEL,
        annotator="alice",
    )
    for who, n in (("alice", 3), ("bob", 2)):
        for i in range(n):
            save_judgement(
                store,
                {
                    "client_key": f"{who}-{i}",
                    "item_id": f"item-{i}",
                    "kind": "single",
                    "annotator": who,
                    "question": SENTINEL,
                    "human_score": float(i + 1),
                    "note": f"note by {who}",
                },
            )
    ctx = AppContext(
        backends=Backends(BackendConfig(model=str(tiny_lm_dir))), store=store, auth_enabled=True
    )
    demo = build_app(ctx)
    options = app_module.launch_options(
        argparse.Namespace(host="127.0.0.1", port=free_port()), list(USERS)
    )
    try:
        with serving(demo, **options) as url:
            yield SimpleNamespace(url=url, demo=demo, ctx=ctx, folder=folder)
    finally:
        store.close()


def answer_without_login(client: httpx.Client, method: str, path: str):
    body = POST_BODY if method == "POST" else None
    with client.stream(method, fill(path), json=body) as r:
        if "event-stream" in r.headers.get("content-type", ""):
            content = b""  # a never-ending stream (the heartbeat): the status is enough
        else:
            content = r.read()
        return r.status_code, r.headers.get("location", ""), content


def test_no_route_answers_without_login(served):
    routes = routes_of(served.demo.app)
    assert len(routes) > 50
    assert set(PUBLIC) <= set(routes), set(PUBLIC) - set(routes)
    answered = []
    client = httpx.Client(base_url=served.url, follow_redirects=False, timeout=10)
    for method, path in routes:
        status, location, content = answer_without_login(client, method, path)
        assert SENTINEL.encode() not in content, f"{method} {path} leaked stored data"
        assert status < 500, f"{method} {path} failed with {status}"
        if (method, path) in PUBLIC:
            continue
        off = [code for pattern, code in SWITCHED_OFF.items() if pattern.match(path)]
        if off:
            assert status == off[0], (method, path, status)
            continue
        refused = status in (401, 403) or (300 <= status < 400 and "login" in location.lower())
        if not refused:
            answered.append((method, path, status, content[:80]))
    client.close()
    assert answered == [], "answered without login:\n" + "\n".join(map(str, answered))


def test_the_login_page_carries_no_app_data(served):
    page = httpx.get(served.url, timeout=10).text
    config = json.loads(re.search(r"window\.gradio_config = (\{.*?\});", page).group(1))
    assert config["auth_required"] is True
    assert config["components"] == [] and config["dependencies"] == []
    assert SENTINEL not in page and "note by" not in page
    for anonymous in ("/gradio_api/user", "/gradio_api/token"):
        data = httpx.get(served.url.rstrip("/") + anonymous, timeout=10).json()
        assert not data or not any(data.values())
    # Gradio embeds its API description (endpoint names, parameters, the NLI model name in a
    # default) in every page; ui.guard removes it, so an anonymous visitor learns nothing of it.
    info = re.search(r"window\.gradio_api_info = (.*?);</script>", page).group(1)
    assert json.loads(info) is None
    for word in ("list_runs", "open_run", "export_my_judgements", "named_endpoints", "nli"):
        assert word not in page.lower(), word


def test_every_named_endpoint_and_function_refuses_without_login(served):
    named = served.demo.get_api_info()["named_endpoints"]
    assert {"/generate", "/list_runs", "/open_run", "/export_my_judgements"} <= set(named)
    client = httpx.Client(base_url=served.url + "gradio_api", timeout=10)
    for name in named:
        for route in (f"/call{name}", f"/call/v2{name}", f"/run{name}", f"/api{name}"):
            r = client.post(route, json={"data": []})
            assert r.status_code == 401, (route, r.status_code)
    for fn_index in served.demo.fns:  # private events (page loads, table clicks) too
        r = client.post("/queue/join", json={**POST_BODY, "fn_index": fn_index})
        assert r.status_code == 401, (fn_index, r.status_code)
    client.close()
    with pytest.raises(Exception):  # noqa: B017 - gradio_client's own auth error type
        Client(served.url, verbose=False)


def read_csv(path: str) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_each_annotator_exports_only_their_own_judgements(served):
    for who, password in USERS:
        client = Client(served.url, auth=(who, password), verbose=False)
        rows = read_csv(client.predict(api_name="/export_my_judgements"))
        assert rows and {r["annotator"] for r in rows} == {who}
        assert {r["note"] for r in rows} == {f"note by {who}"}
        with pytest.raises(Exception, match="each annotator exports their own"):
            client.predict(api_name="/export_all_judgements")
        client.close()


def test_export_all_is_refused_for_a_logged_in_request_even_if_the_context_says_no_login(
    served,
):
    handlers = {
        fn.api_name: fn.fn
        for fn in served.demo.fns.values()
        if fn.api_name in ("export_all_judgements", "export_my_judgements")
    }
    served.ctx.auth_enabled = False
    try:
        with pytest.raises(gr.Error, match="each annotator exports their own"):
            handlers["export_all_judgements"](request=SimpleNamespace(username="bob"))
        mine = read_csv(handlers["export_my_judgements"](request=SimpleNamespace(username="bob")))
        assert {r["annotator"] for r in mine} == {"bob"}
        with pytest.raises(gr.Error, match="Type your annotator name first"):
            handlers["export_my_judgements"](request=None)  # never "everyone's"
    finally:
        served.ctx.auth_enabled = True


def test_the_logged_in_name_wins_over_a_typed_one():
    assert annotator_of(SimpleNamespace(username="alice"), "bob") == "alice"
    assert annotator_of(None, "  carol ") == "carol"
    assert annotator_of(SimpleNamespace(username=None), "") is None


def test_the_file_routes_serve_nothing_outside_gradio_folders(served):
    client = httpx.Client(base_url=served.url, timeout=10)
    r = client.post("/login", data={"username": "alice", "password": "pw-alice"})
    assert r.status_code in (200, 302, 303)
    db = served.folder / "confidant.db"
    secret = Path(tempfile.gettempdir()) / f"outside-{secrets.token_hex(4)}.txt"
    secret.write_text(SENTINEL, encoding="utf-8")
    try:
        for target in (db, secret, Path("/etc/passwd"), Path(app_module.__file__)):
            for route in (f"/gradio_api/file={target}", f"/gradio_api/file/{target}"):
                r = client.get(route)
                assert r.status_code in (403, 404), (route, r.status_code)
                assert SENTINEL.encode() not in r.content
        for route in ("/gradio_api/file=../../../etc/passwd", "/gradio_api/file=..%2f..%2fetc"):
            assert client.get(route).status_code in (403, 404)
        # An upload whose name climbs out of the upload folder lands inside it.
        name = "../../../../" + secret.name
        r = client.post("/gradio_api/upload", files={"files": (name, b"uploaded")})
        assert r.status_code == 200
        (stored,) = r.json()
        upload_root = Path(served.demo.GRADIO_CACHE).resolve()
        assert Path(stored).resolve().is_relative_to(upload_root)
        assert secret.read_text(encoding="utf-8") == SENTINEL  # not overwritten
    finally:
        secret.unlink()
        client.close()


def test_exports_go_to_fresh_private_temporary_directories(served):
    store = served.ctx.store
    paths = [
        export_judgements(store, annotator="alice"),
        export_judgements(store, annotator="alice"),
        export_judgements(store, fmt="jsonl"),
        export_runs_csv(store),
    ]
    folders = [p.parent for p in paths]
    assert len(set(folders)) == len(folders), "two exports shared a folder"
    root = (Path(tempfile.gettempdir()) / "confidant-exports").resolve()
    assert oct(root.stat().st_mode & 0o777) == oct(0o700)
    for p in paths:
        assert p.parent.resolve().parent == root and len(p.parent.name) == 32  # unguessable
        assert [x.name for x in p.parent.iterdir()] == [p.name]
        assert oct(p.parent.stat().st_mode & 0o777) == oct(0o700)  # owner only
        assert oct(p.stat().st_mode & 0o777) == oct(0o600)
        assert not p.resolve().is_relative_to(served.folder.resolve())
    assert export_dir() != export_dir()


def test_export_folders_older_than_the_time_limit_are_deleted(tmp_path):
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "x.csv").write_text("a\n")
    hour_ago = time.time() - EXPORT_TTL_S - 5
    os.utime(old, (hour_ago, hour_ago))
    assert sweep_exports(tmp_path) == 1
    assert not old.exists() and (fresh / "x.csv").exists()
    # The real root is swept by every new export.
    stale = export_dir()
    os.utime(stale, (hour_ago, hour_ago))
    export_dir()
    assert not stale.exists()


def test_api_keys_never_reach_the_database_exports_or_logs(tmp_path, monkeypatch, caplog, capfd):
    key = "sk-confidant-" + secrets.token_hex(16)
    monkeypatch.setenv("CONFIDANT_OPENAI_API_KEY", key)
    caplog.set_level(logging.DEBUG)  # httpx/httpcore debug logs included
    with FakeOpenAI() as server:
        ctx, _ = app_module.make_context(
            app_module.parse_args(
                [
                    "--openai-base-url",
                    server.url,
                    "--model",
                    "served",
                    "--db",
                    str(tmp_path / "k.db"),
                ]
            )
        )
        generate = GenerateHandlers(ctx).generate
        *_, status = list(generate("Capital of France?", 0.0, 1.0, 0, 8, 0, None))[-1]
        assert "Saved as run" in status
        # A server whose error reply quotes the key it was sent.
        server.mode = "echo-auth"
        with pytest.raises(gr.Error) as failed:
            list(generate("Capital of Italy?", 0.0, 1.0, 0, 8, 0, None))
        assert "HTTP 401" in failed.value.message and "[redacted]" in failed.value.message
        assert key not in failed.value.message and key not in str(failed.value.__cause__)
        # The key was really sent, so its absence below means something.
        assert {r["auth"] for r in server.requests} == {f"Bearer {key}"}

    save_judgement(ctx.store, {"client_key": "k1", "kind": "single", "annotator": "alice"})
    exports = [
        export_runs_csv(ctx.store),
        export_judgements(ctx.store),
        export_judgements(ctx.store, fmt="jsonl"),
    ]
    ctx.store.close()
    needle = key.encode()
    for path in [*tmp_path.glob("k.db*"), *exports]:
        assert needle not in path.read_bytes(), f"the API key is in {path}"
    out, err = capfd.readouterr()
    assert key not in caplog.text and key not in out and key not in err
    assert redact(f"x {key} y") == "x [redacted] y"


def test_an_upload_input_cannot_name_a_file_outside_the_upload_folder(tmp_path):
    """What an upload handler receives (the Judge tab's item files, for one) is always a copy in
    Gradio's cache: a request that names a server path instead of uploading is refused."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SENTINEL, encoding="utf-8")
    seen = []

    def read(file):
        seen.append(file)
        return Path(file).read_text(encoding="utf-8", errors="replace")[:100]

    with gr.Blocks() as demo:
        upload = gr.File(label="Items")
        out = gr.Textbox()
        gr.Button().click(read, upload, out, api_name="read_file")
    options = app_module.launch_options(
        argparse.Namespace(host="127.0.0.1", port=free_port()), None
    )
    with serving(demo, **options) as url:
        base = f"{url}gradio_api"
        for path in (str(secret), "/etc/passwd", f"{demo.GRADIO_CACHE}/../{secret.name}"):
            file_data = {"path": path, "meta": {"_type": "gradio.FileData"}}
            event = httpx.post(f"{base}/call/read_file", json={"data": [file_data]}, timeout=10)
            if event.status_code != 200:
                continue  # refused before it ran
            stream = httpx.get(f"{base}/call/read_file/{event.json()['event_id']}", timeout=30)
            assert "event: error" in stream.text and SENTINEL not in stream.text, path
        assert seen == []
        # A real upload reaches the handler as a copy inside the cache.
        client = Client(url, verbose=False)
        assert client.predict(handle_file(str(secret)), api_name="/read_file") == SENTINEL
        assert Path(seen[0]).resolve().is_relative_to(Path(demo.GRADIO_CACHE).resolve())
        client.close()
