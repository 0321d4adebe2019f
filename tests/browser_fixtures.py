"""Fixtures of the browser tests (tests/test_browser_*.py), registered by tests/conftest.py so that every browser test
module shares one ASGI server (daphne's Twisted reactor runs once per process): the project's ASGI app served on a
free loopback port in a thread, headless Chromium (Debian's), and a logged-in staff user's page that refuses any
request leaving the server and fails on JavaScript errors. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def asgi_server(celery_worker):
    """The project's ASGI application (cinr_web.asgi) served by daphne on a free loopback port, in a thread."""
    from daphne.server import Server
    from twisted.internet import reactor

    from cinr_web.asgi import application

    port = _free_port()
    ready = threading.Event()
    server = Server(application=application, endpoints=[f"tcp:port={port}:interface=127.0.0.1"],
                    signal_handlers=False, ready_callable=ready.set, verbosity=0)
    thread = threading.Thread(target=server.run, name="daphne", daemon=True)
    thread.start()
    assert ready.wait(30), "daphne did not start"
    deadline = time.monotonic() + 30
    while True:  # the listening socket opens just after ready_callable
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    reactor.callFromThread(reactor.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def browser(asgi_server):
    """Headless Chromium. Playwright's sync API keeps an event loop running in this thread, which makes Django refuse
    ORM calls here (test bodies, database flushes) unless DJANGO_ALLOW_ASYNC_UNSAFE is set while it lives; the ORM
    itself still runs synchronously. Module scope: that loop must be gone before later modules use asyncio.run or
    async_to_sync in this thread."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, asgi_server, transactional_db, request):
    """A logged-in staff user's page (logged in through the login form)."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("browser", "browser@example.org", "browser-password", is_staff=True)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=asgi_server)
    # Offline: any request that leaves our server (a CDN, fonts, ...) is refused and fails the test.
    outside: list[str] = []

    def only_ours(route):
        if route.request.url.startswith(asgi_server) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_ours)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto("/accounts/login/")
    tab.get_by_label("User name").fill("browser")
    tab.get_by_label("Password").fill("browser-password")
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(asgi_server + "/")
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not outside, f"requests outside the server: {outside}"
