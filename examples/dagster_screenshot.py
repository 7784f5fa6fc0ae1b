"""Screenshot of the Dagster asset page with provgate's metadata: docs/img/dagster-asset.png.

    python examples/dagster_screenshot.py [--dagster-python .nox/dagster/bin/python]

Runs the reference pipeline into a temporary DAGSTER_HOME with the interpreter that has
Dagster (the nox ``dagster`` session's by default), serves it with dagster-webserver on
127.0.0.1, and photographs the ``model`` asset's page with headless Chromium (this
interpreter: the dev extra's Playwright, Debian's chromium, the same loopback-only guard
as the browser test).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.web.test_browser import browser_unavailable, chromium  # noqa: E402

OUT = REPO / "docs" / "img" / "dagster-asset.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dagster-python", default=str(REPO / ".nox" / "dagster" / "bin" / "python")
    )
    args = parser.parse_args()
    reason = browser_unavailable()
    if reason:
        print(f"cannot take the screenshot: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "dagster").mkdir()
        (tmp / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(tmp / "dagster"),
            "PROVGATE_HOME": str(tmp / "home"),
            "PROVGATE_EXAMPLE_WORKDIR": str(tmp / "work"),
            "PYTHONPATH": str(REPO),
        }
        env.pop("PROVGATE_SIGNING_KEY", None)
        run = [args.dagster_python, str(REPO / "example_pipelines" / "run_dagster.py")]
        subprocess.run(
            [*run, "--home", str(tmp / "home"), "--workdir", str(tmp / "work")],
            cwd=tmp,
            env=env,
            check=True,
            capture_output=True,
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        webserver = Path(args.dagster_python).parent / "dagster-webserver"
        proc = subprocess.Popen(
            [
                str(webserver),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-f",
                "example_pipelines/dagster_pipeline.py",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(240):
                try:
                    urllib.request.urlopen(base + "/server_info", timeout=2).close()  # noqa: S310 - http
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.5)
            with chromium(tmp) as (context, blocked):
                page = context.new_page()
                page.set_viewport_size({"width": 1500, "height": 1100})
                page.goto(base + "/assets/model?view=events")
                page.get_by_text("provgate/lineage").first.wait_for(timeout=60_000)
                page.wait_for_timeout(2000)
                skip = page.get_by_role("button", name="Skip")  # the community modal
                if skip.count():
                    skip.first.click()
                    page.wait_for_timeout(500)
                page.get_by_text("provgate/log_index").first.scroll_into_view_if_needed()
                page.wait_for_timeout(500)
                page.screenshot(path=str(OUT))
                print(OUT.relative_to(REPO))
                if blocked:
                    print(f"(blocked requests beyond loopback: {len(blocked)})", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
