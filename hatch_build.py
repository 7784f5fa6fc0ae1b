"""Hatch build hook: fetch the lineage web view's graph library at build time.

Third-party code is never committed to this repository. cytoscape.js (MIT) is
downloaded as its pinned npm tarball from the npm registry, checked against the
tarball's pinned ``dist.integrity`` (SHA-512, Subresource Integrity form), and
its minified build and license are extracted into
``prov_core/web/static/vendor/`` (gitignored). Wheels carry them as hatch
``artifacts``; editable installs (``pip install -e .``, ``uv pip install -e``,
the nox sessions) read them from the source tree, so the page works offline.

- Skips at once if the file is already there with the pinned SHA-512.
- ``PROVGATE_CYTOSCAPE_TGZ=/path/to/cytoscape-VERSION.tgz`` uses a local copy of
  the tarball instead of the network (it is checked all the same).
- Any failure (no network, wrong bytes) stops the build with a message saying
  what to do. ``python hatch_build.py`` runs the same fetch by hand.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

NAME = "cytoscape"
VERSION = "3.34.4"
TARBALL = f"https://registry.npmjs.org/{NAME}/-/{NAME}-{VERSION}.tgz"
INTEGRITY = (  # `dist.integrity` of https://registry.npmjs.org/cytoscape/3.34.4
    "sha512-msY99tMY8iWTg+sIPGfSqDcPNOt4xcj+v/K/7qUFaCUxxlqnMkUYLBjRUzn9W5CU/R2hrmtJa5+"
    "UtovrEM2ctg=="
)
# tarball member -> file under prov_core/web/static/vendor/
MEMBERS = {
    "package/dist/cytoscape.min.js": "cytoscape.min.js",
    "package/LICENSE": "cytoscape.LICENSE",
}
STAMP = "cytoscape.sha512"  # the SHA-512 of the extracted min.js, to skip quickly
VENDOR = Path(__file__).resolve().parent / "prov_core" / "web" / "static" / "vendor"
TIMEOUT = 60


class VendorError(RuntimeError):
    """VendorError: the graph library could not be fetched or did not verify."""


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _present(vendor: Path) -> bool:
    stamp = vendor / STAMP
    js = vendor / MEMBERS["package/dist/cytoscape.min.js"]
    if not (stamp.is_file() and js.is_file() and (vendor / "cytoscape.LICENSE").is_file()):
        return False
    return stamp.read_text().strip() == f"{INTEGRITY} {hashlib.sha512(js.read_bytes()).hexdigest()}"


def _download() -> bytes:
    local = os.environ.get("PROVGATE_CYTOSCAPE_TGZ")
    if local:
        return Path(local).read_bytes()
    try:
        with urllib.request.urlopen(TARBALL, timeout=TIMEOUT) as response:
            return bytes(response.read())
    except OSError as exc:
        raise VendorError(
            f"could not download {TARBALL} ({exc}). The lineage web view ships cytoscape.js "
            "fetched at build time: build with network access to registry.npmjs.org, or "
            f"download that tarball yourself and set PROVGATE_CYTOSCAPE_TGZ to its path"
        ) from exc


def fetch(vendor: Path = VENDOR) -> Path:
    """fetch makes sure ``vendor`` holds the pinned cytoscape.js; returns the min.js path."""
    js = vendor / MEMBERS["package/dist/cytoscape.min.js"]
    if _present(vendor):
        return js
    data = _download()
    if _sri(data) != INTEGRITY:
        raise VendorError(
            f"{NAME}-{VERSION}.tgz does not match its pinned integrity {INTEGRITY} "
            f"(got {_sri(data)}): refusing to ship it"
        )
    vendor.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member, target in MEMBERS.items():
            extracted = tar.extractfile(member)
            if extracted is None:
                raise VendorError(f"{NAME}-{VERSION}.tgz has no file {member}")
            tmp = vendor / f".{target}.tmp"
            tmp.write_bytes(extracted.read())
            tmp.replace(vendor / target)
    digest = hashlib.sha512(js.read_bytes()).hexdigest()
    (vendor / STAMP).write_text(f"{INTEGRITY} {digest}\n")
    return js


try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run by hand: `python hatch_build.py`
    BuildHookInterface = object


class VendorHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    """VendorHook fetches the graph library before a wheel (or editable wheel) is built."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:  # noqa: ARG002
        if getattr(self, "target_name", "wheel") != "wheel":
            return  # the sdist carries hatch_build.py, not the third-party file
        try:
            fetch()
        except VendorError as exc:
            raise SystemExit(f"provgate build: {exc}") from exc
        build_data.setdefault("artifacts", []).append("prov_core/web/static/vendor/*")


if __name__ == "__main__":
    try:
        print(fetch())
    except VendorError as exc:
        sys.exit(f"error: {exc}")
