"""Failed logins are locked out per name and per address (HTTP 429 with Retry-After), the right
password does not get through a lock-out, and no page embeds the API description."""

from __future__ import annotations

import argparse

import gradio as gr
import httpx
import pytest

import app as app_module
from tests.helpers import free_port, serving
from ui.guard import LoginGuard, client_address

USERS = [("alice", "pw-alice"), ("bob", "pw-bob")]


@pytest.fixture
def served():
    with gr.Blocks() as demo:
        gr.Markdown("hello")
    options = app_module.launch_options(
        argparse.Namespace(host="127.0.0.1", port=free_port()), list(USERS)
    )
    with serving(demo, **options) as url:
        yield url


def login(url: str, user: str, password: str, **kw) -> httpx.Response:
    return httpx.post(url + "login", data={"username": user, "password": password}, **kw)


def test_repeated_wrong_passwords_lock_the_name_out_even_for_the_right_one(served):
    codes = [login(served, "alice", f"wrong-{i}").status_code for i in range(5)]
    assert codes == [400] * 5
    locked = login(served, "alice", "wrong-again")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "Too many failed logins" in locked.json()["detail"]
    # The right password does not get through the lock-out, in any spelling of the name.
    assert login(served, "alice", "pw-alice").status_code == 429
    assert login(served, " ALICE ", "pw-alice").status_code == 429
    # Another annotator from the same address still logs in.
    assert login(served, "bob", "pw-bob").status_code == 200


def test_one_address_is_locked_out_after_many_names(served):
    for i in range(20):
        assert login(served, f"user-{i}", "x").status_code == 400
    assert login(served, "bob", "pw-bob").status_code == 429


def test_multipart_logins_are_counted_too(served):
    for _ in range(5):
        r = httpx.post(served + "login", files={"username": (None, "bob"), "password": (None, "x")})
        assert r.status_code == 400
    assert login(served, "bob", "pw-bob").status_code == 429


def test_an_oversized_login_form_is_refused(served):
    r = httpx.post(served + "login", data={"username": "bob", "password": "x" * 100_000})
    assert r.status_code == 413


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_lock_doubles_with_each_failure_and_a_success_clears_it():
    clock = Clock()
    guard = LoginGuard(None, user_failures=3, base_delay_s=10, max_delay_s=35, clock=clock)
    keys = [("user", "alice"), ("address", "1.2.3.4")]
    for _ in range(2):
        guard.failed(keys)
    assert guard.retry_after(keys) == 0
    guard.failed(keys)
    assert guard.retry_after(keys) == 10
    clock.now += 10
    assert guard.retry_after(keys) == 0
    guard.failed(keys)
    assert guard.retry_after(keys) == 20
    clock.now += 20
    guard.failed(keys)
    assert guard.retry_after(keys) == 35  # capped
    guard.succeeded(keys)
    assert guard.retry_after(keys) == 0


def test_failures_outside_the_window_are_forgotten():
    clock = Clock()
    guard = LoginGuard(None, user_failures=3, window_s=60, clock=clock)
    keys = [("user", "bob")]
    guard.failed(keys)
    guard.failed(keys)
    clock.now += 61
    guard.failed(keys)
    assert guard.retry_after(keys) == 0


def test_the_address_behind_a_local_proxy_is_the_forwarded_one():
    proxied = {"client": ("127.0.0.1", 5), "headers": [(b"x-forwarded-for", b"9.9.9.9, 8.8.8.8")]}
    assert client_address(proxied) == "8.8.8.8"
    direct = {"client": ("8.8.4.4", 5), "headers": [(b"x-forwarded-for", b"1.1.1.1")]}
    assert client_address(direct) == "8.8.4.4"  # a remote client cannot pick its address


def test_no_page_embeds_the_api_description(served):
    page = httpx.get(served).text
    assert "window.gradio_api_info = null;" in page
