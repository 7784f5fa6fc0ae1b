"""Screenshot of a flow run's provgate lineage artifact in the Prefect UI.

Writes docs/img/prefect-lineage.png:

    python examples/prefect_screenshot.py [--prefect-python .nox/prefect/bin/python]

Starts a Prefect server on 127.0.0.1 with a temporary PREFECT_HOME (the nox ``prefect``
session's interpreter by default), runs a small ingest -> clean -> snapshot -> train flow
against it, whose clean step fails once and is retried (``--run-flow``, in that
interpreter), and photographs the flow run's lineage artifact with headless Chromium
(this interpreter: the dev extra's Playwright, Debian's chromium, the loopback-only guard
of the browser tests: Prefect's UI calls an outside analytics host on load, which is
blocked).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "img" / "prefect-lineage.png"


def run_flow(workdir: Path) -> None:
    """Run the demo flow (in the Prefect interpreter); print the lineage artifact's id."""
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.context import get_run_context
    from prov_prefect import (
        ProvenanceConfig,
        ingest,
        pinned_uri,
        provenance,
        provenance_flow,
        snapshot,
    )

    from prov_core.ingest import IngestRequest

    cfg = ProvenanceConfig(home=str(workdir / "provgate"))
    raw = workdir / "reviews.csv"
    raw.write_text("id,text\n1,great product\n2,spam spam\n3,works fine\n")

    @provenance(config=cfg)
    @task
    def ingest_reviews(path: Path):  # type: ignore[no-untyped-def]
        return ingest(
            path, IngestRequest(source="https://example.org/reviews", license="CC0-1.0"), config=cfg
        )

    tries: list[int] = []

    @provenance(config=cfg)
    @task(retries=1)
    def clean_reviews(ingested: object) -> Path:
        del ingested  # an upstream: Prefect tracks it in task_inputs
        tries.append(1)
        if len(tries) == 1:  # a flaky first try: the diagram shows the retry-of link
            raise OSError("reviews.csv: temporarily unavailable")
        out = workdir / "clean" / "clean.csv"
        out.parent.mkdir(exist_ok=True)
        out.write_text("".join(x for x in (workdir / "reviews.csv").open() if "spam" not in x))
        return out

    @provenance(config=cfg)
    @task
    def snapshot_reviews(cleaned: Path):  # type: ignore[no-untyped-def]
        return snapshot(cleaned.parent, "reviews", message="clean v1", config=cfg)

    @provenance(config=cfg, training=True)
    @task
    def train(data: str) -> Path:
        model = workdir / "model.bin"
        model.write_bytes(b"weights trained on " + data.encode())
        return model

    @provenance_flow(config=cfg)
    @flow(name="reviews-pipeline")
    def pipeline():  # type: ignore[no-untyped-def]
        snap = snapshot_reviews(clean_reviews(ingest_reviews(raw)))
        train(pinned_uri(snap, "reviews"), wait_for=[snap])
        return get_run_context().flow_run.id

    flow_run_id = pipeline()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    (lineage,) = [a for a in found if a.type == "markdown"]
    print(f"ARTIFACT {lineage.id} FLOWRUN {flow_run_id}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our http://127.0.0.1 URL
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer in {seconds:.0f} s") from None
            time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--prefect-python", default=str(REPO / ".nox" / "prefect" / "bin" / "python")
    )
    parser.add_argument("--run-flow", metavar="WORKDIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_flow:
        run_flow(Path(args.run_flow))
        return 0

    sys.path.insert(0, str(REPO))
    from tests.web.test_browser import browser_unavailable, chromium

    reason = browser_unavailable()
    if reason:
        print(f"cannot take the screenshot: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = _free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {
            **os.environ,
            "PREFECT_HOME": str(tmp / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_URL": api,
            "PYTHONPATH": str(REPO),
        }
        env.pop("PROVGATE_SIGNING_KEY", None)
        prefect = str(Path(args.prefect_python).with_name("prefect"))
        server = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env={**env, "PREFECT_UI_API_URL": api},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait(f"{api}/health", 120)
            (tmp / "work").mkdir()
            out = subprocess.run(
                [args.prefect_python, __file__, "--run-flow", str(tmp / "work")],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            line = next(x for x in out.splitlines() if x.startswith("ARTIFACT "))
            artifact_id = line.split()[1]
            with chromium(tmp) as (context, blocked):
                page = context.new_page()
                page.set_viewport_size({"width": 1600, "height": 1100})
                page.goto(f"http://127.0.0.1:{port}/v2/artifacts/artifact/{artifact_id}")
                try:
                    page.wait_for_selector("text=provgate lineage of this flow run", timeout=60_000)
                except Exception:
                    print(page.url, page.inner_text("body")[:2000], file=sys.stderr)
                    raise
                try:
                    page.wait_for_selector("svg[id^='mermaid'], .mermaid svg", timeout=20_000)
                except Exception:
                    print("the Mermaid diagram did not render (v1 UI?)", file=sys.stderr)
                time.sleep(1)
                OUT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(OUT), full_page=True)
                print(f"wrote {OUT} (blocked outside requests: {len(blocked)})")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
