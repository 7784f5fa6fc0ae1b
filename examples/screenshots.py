"""Screenshots of the lineage web view for the README: ``python examples/screenshots.py``.

Builds the small real lineage of ``tests/web/pipeline.py`` (two ingests, a
transform, a snapshot, a training step) in a temporary home, serves the view
on 127.0.0.1 and photographs the model's page with headless Chromium, with the
same loopback-only guard as the browser test:

    docs/img/lineage.png            the model's page, every node verified
    docs/img/lineage-tampered.png   the same page after one transform record was edited

Needs the dev extra (playwright, fastapi, uvicorn) and Debian's chromium.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.web.pipeline import built, tamper_step  # noqa: E402
from tests.web.test_browser import browser_unavailable, chromium, served  # noqa: E402

OUT = REPO / "docs" / "img"


def _shoot(page: object, url: str, path: Path) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.wait_for_selector("body[data-graph=ready]", timeout=30_000)  # type: ignore[attr-defined]
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    print(path.relative_to(REPO))


def main() -> int:
    reason = browser_unavailable()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 2
    from prov_core.web import create_app

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with built(tmp_path) as pipe, served(create_app(pipe.home)) as base:
            with chromium(tmp_path) as (context, blocked):
                page = context.new_page()
                page.set_viewport_size({"width": 1280, "height": 900})
                url = f"{base}/records/{pipe.train}"
                _shoot(page, url, OUT / "lineage.png")
                tamper_step(pipe.home, pipe.clean)
                _shoot(page, url, OUT / "lineage-tampered.png")
            if blocked:
                print(f"requests beyond loopback were blocked: {blocked}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
