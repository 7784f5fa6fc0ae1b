"""The real ``airflow api-server`` (bound to 127.0.0.1) with the plugin: the Provenance tab of a
training task, opened in headless Chromium with every non-loopback request blocked, shows
the node's lineage; without credentials it answers 401, with a bad token 403. With
``PROVGATE_UPDATE_SCREENSHOTS=1`` the screenshot replaces docs/img/airflow-provenance.png."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
from test_operators import PIPELINE, _data

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def server(run_dag, prov_home: Path, tmp_path: Path) -> Iterator[tuple[str, object]]:
    res = run_dag("ui_pipeline", PIPELINE, work=_data(tmp_path), inputs="None")
    assert res.state == "success", res.states
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "ui-test-" + "y" * 64,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
    }
    log = (tmp_path / "api-server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"api-server exited: {(tmp_path / 'api-server.log').read_text()}")
            try:
                if _get(base + "/api/v2/monitor/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("api-server did not start in 120 s")
        yield base, res
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_provenance_tab_in_the_airflow_ui(server, tmp_path: Path) -> None:
    base, res = server
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    record = res.attestation("train")["log_index"]
    run = quote(res.run_id, safe="")
    view = f"{base}/provgate/ti/ui_pipeline/{run}/train/-1"
    assert _get(view)[0] == 401
    assert _get(view, {"Authorization": "Bearer bad"})[0] == 403
    assert _get(f"{base}/provgate/api/recent")[0] == 401

    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("PROVGATE_REQUIRE_SERVICES") == "1":
            pytest.fail("Debian's chromium is not installed (PROVGATE_REQUIRE_SERVICES=1)")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    password = json.loads(Path(SimpleAuthManager.get_generated_password_file()).read_text())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        blocked: list[str] = []

        def guard(route) -> None:
            url = urlparse(route.request.url)
            if url.scheme in ("data", "blob") or url.hostname in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        page.goto(f"{base}/auth/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", password["admin"])
        page.keyboard.press("Enter")
        page.wait_for_url(lambda u: "/auth/login" not in u, timeout=30_000)
        # The task instance page with the plugin's tab (the UI embeds our view in it).
        page.goto(f"{base}/dags/ui_pipeline/runs/{run}/tasks/train/plugin/provenance")
        frame = None
        deadline = time.monotonic() + 60
        while frame is None and time.monotonic() < deadline:
            frame = next((f for f in page.frames if "/provgate/records/" in f.url), None)
            if frame is None:
                page.wait_for_timeout(500)
        assert frame is not None, [f.url for f in page.frames]
        assert frame.url.endswith(f"/provgate/records/{record}")
        frame.wait_for_selector("text=ui_pipeline.train", timeout=30_000)
        assert "does NOT verify" not in frame.content()
        page.wait_for_timeout(1000)
        out = tmp_path / "airflow-provenance.png"
        page.screenshot(path=str(out), full_page=False)
        browser.close()
    assert not blocked, blocked
    assert out.stat().st_size > 10_000
    if os.environ.get("PROVGATE_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(out, REPO / "docs" / "img" / "airflow-provenance.png")
