"""A real browser (Debian's chromium, driven by Playwright) against the app served in-process
on a free port with the tiny model. Screenshots go to $CONFIDANT_SCREENSHOTS (default: a temp
dir); `python tests/browser/screenshots.py` refreshes the README's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    d = os.environ.get("CONFIDANT_SCREENSHOTS")
    path = Path(d) if d else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def live_app(tmp_path_factory, tiny_lm_dir, tiny_nli_dir):
    """The whole app with the tiny models, as `python app.py --model tiny-random` serves it."""
    from backends.registry import BackendConfig, Backends
    from store.db import Store
    from ui.app import build_app
    from ui.context import AppContext

    config = BackendConfig(model="tiny-random")
    backends = Backends(config)
    ctx = AppContext(backends=backends, store=Store(tmp_path_factory.mktemp("db") / "app.db"))
    with serving(build_app(ctx)) as url:
        yield url, ctx


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()
