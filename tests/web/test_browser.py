"""The lineage page in a real browser: Debian's headless Chromium driven by Playwright.

The app is served by uvicorn on 127.0.0.1 in a thread, mounted under a prefix
(as the Airflow adapter mounts it). Nothing may leave loopback: Chromium's
resolver maps every other host to nothing and a route guard aborts any request
not to 127.0.0.1/localhost, and the test fails if one was even attempted.
Without Chromium or Playwright the test skips, and fails under
PROVGATE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import need_service

from .pipeline import SOURCES, built, tamper_step

CHROMIUM = os.environ.get("PROVGATE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]
LOOPBACK = {"127.0.0.1", "localhost"}
PREFIX = "/plugins/provgate"


def browser_unavailable() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install 'provgate[dev]')"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


@contextmanager
def served(app: Any) -> Iterator[str]:
    """served runs ``app`` with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start in 20 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def chromium(tmp_path: Path) -> Iterator[tuple[Any, list[str]]]:
    """chromium yields a headless browser context (fresh profile) and the blocked URLs."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        scheme = urlsplit(url).scheme
        if scheme in ("data", "blob") or urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            context.route("**/*", guard)
            yield context, blocked
        finally:
            context.close()


def _wait_graph(page: Any) -> None:
    page.wait_for_selector("body[data-graph]", timeout=20_000)
    assert page.get_attribute("body", "data-graph") == "ready", page.inner_text("#graph-status")


def _graph_status(page: Any, log_index: int) -> Any:
    return page.evaluate(f"window.provgateGraph.getElementById('r{log_index}').data('status')")


def test_model_page_shows_sources_and_a_tampered_node_failing(tmp_path: Path) -> None:
    need_service(browser_unavailable())
    from fastapi import FastAPI

    from prov_core.web import create_app

    with built(tmp_path) as pipe:
        parent = FastAPI()
        parent.mount(PREFIX, create_app(pipe.home))
        with served(parent) as base, chromium(tmp_path) as (context, blocked):
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}{PREFIX}/records/{pipe.train}")
            _wait_graph(page)
            sources = page.inner_text("#sources")
            for _, uri, lic in SOURCES.values():
                assert uri in sources
                assert lic in sources
            assert "Chain of custody verifies." in page.inner_text("main")
            assert page.evaluate("window.provgateGraph.nodes().length") == 5
            assert page.evaluate("window.provgateGraph.edges().length") >= 4
            assert _graph_status(page, pipe.clean) == "ok"
            assert page.get_attribute(f"#node-{pipe.clean}", "data-status") == "ok"

            tamper_step(pipe.home, pipe.clean)
            page.reload()
            _wait_graph(page)
            row = page.locator(f"#node-{pipe.clean}")
            assert row.get_attribute("data-status") == "failing"
            assert "signature" in row.inner_text()
            assert _graph_status(page, pipe.clean) == "failing"
            assert _graph_status(page, pipe.train) == "ok"
            assert "does NOT verify" in page.inner_text("main")

            # the graph's nodes link to their pages, relative to the mount prefix
            page.evaluate(f"window.provgateGraph.getElementById('r{pipe.clean}').emit('tap')")
            page.wait_for_url(f"{base}{PREFIX}/records/{pipe.clean}")
            _wait_graph(page)
            assert page.get_attribute(f"#node-{pipe.clean}", "data-status") == "failing"

            # search by source through the form
            page.select_option("select[name=by]", "source")
            page.fill("input[name=q]", SOURCES["docs"][1])
            page.click("form.search button")
            page.wait_for_url(f"{base}{PREFIX}/search?**")
            assert f"{pipe.ingests['docs']}" in page.inner_text("table.nodes")

            assert errors == []
        assert blocked == [], f"requests beyond loopback: {blocked}"


def test_the_guard_blocks_outside_hosts(tmp_path: Path) -> None:
    """The guard itself works: a page asking an outside host gets nothing."""
    need_service(browser_unavailable())
    with chromium(tmp_path) as (context, blocked):
        page = context.new_page()
        page.set_content('<img src="https://example.com/pixel.png">')
        page.wait_for_timeout(300)
    assert blocked == ["https://example.com/pixel.png"]
