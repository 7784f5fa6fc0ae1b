"""provgate core: digests, signed provenance records, a tamper-evident ledger.

The public API is re-exported here and loaded lazily (``provgate digest``
must start as fast as ``b3sum``)::

    from prov_core import Recorder, Artifact, record_step, open_home

    with Recorder.from_home(open_home()) as recorder:
        att = record_step(recorder, "clean", inputs=[upstream], outputs=[Artifact.from_path(p)])

Everything else lives in its module: ``prov_core.digest``, ``.statement``,
``.signing``, ``.trust``, ``.ledger``, ``.verify``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Artifact": "prov_core.step",
    "Attestation": "prov_core.step",
    "CodeIdentity": "prov_core.step",
    "Recorder": "prov_core.step",
    "record_step": "prov_core.step",
    "Home": "prov_core.home",
    "init_home": "prov_core.home",
    "open_home": "prov_core.home",
    "IngestRequest": "prov_core.ingest",
    "ingest_path": "prov_core.ingest",
    "VerifyReport": "prov_core.verify",
    "verify_home": "prov_core.verify",
    "digest_path": "prov_core.digest",
    "open_output": "prov_core.sink",
    "ProvgateError": "prov_core.errors",
}

__all__ = [
    "Artifact",
    "Attestation",
    "CodeIdentity",
    "Home",
    "IngestRequest",
    "ProvgateError",
    "Recorder",
    "VerifyReport",
    "__version__",
    "digest_path",
    "ingest_path",
    "init_home",
    "open_home",
    "open_output",
    "record_step",
    "verify_home",
]

if TYPE_CHECKING:
    from prov_core.digest import digest_path
    from prov_core.errors import ProvgateError
    from prov_core.home import Home, init_home, open_home
    from prov_core.ingest import IngestRequest, ingest_path
    from prov_core.sink import open_output
    from prov_core.step import Artifact, Attestation, CodeIdentity, Recorder, record_step
    from prov_core.verify import VerifyReport, verify_home


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prov_core' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
