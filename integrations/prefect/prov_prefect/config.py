"""ProvenanceConfig: where provgate records (the home), with which policy, and where to link.

One config serves every task decorated with :func:`~prov_prefect.provenance`; the
default reads ``$PROVGATE_HOME`` (else ``./.provgate``) on the worker. The signing key
is the home's active key, or ``PROVGATE_SIGNING_KEY`` (PEM) in the worker's environment,
which a Prefect ``Secret`` block can provide.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.policy import Policy

__all__ = ["ProvenanceConfig"]

# prov_core.home.init_home is not safe against concurrent first use (two task runs in the
# thread pool would each write a config and a key): create homes one at a time here.
_init_lock = threading.Lock()


@dataclass(frozen=True)
class ProvenanceConfig:
    """Where and how provgate records the task runs of a flow.

    ``home``: the provgate home (default ``$PROVGATE_HOME`` or ``./.provgate``);
    ``create_home``: create it (key, trust store, empty ledger) on first use;
    ``policy``: a CEL policy file for the training gate (default: built-in policies);
    ``lineage_url``: base URL of ``provgate ui``; each task run links to
    ``records/<log index>`` under it (None: no link artifact).
    """

    home: str | None = None
    create_home: bool = True
    policy: str | None = None
    lineage_url: str | None = "http://127.0.0.1:8765/"

    def open_home(self) -> Home:
        """The home, created on first use when ``create_home`` is set."""
        from prov_core.home import init_home, open_home

        path = Path(self.home) if self.home else None
        if self.create_home:
            with _init_lock:
                return init_home(path)[0]
        return open_home(path)

    def load_policy(self) -> Policy | None:
        """The configured policy file, loaded; None for the built-in policy."""
        from prov_core.policy import Policy

        return Policy.load(self.policy) if self.policy else None

    def lineage_link(self, log_index: int) -> str | None:
        """The lineage page of a record, or None without ``lineage_url``."""
        if not self.lineage_url:
            return None
        return self.lineage_url.rstrip("/") + f"/records/{log_index}"
