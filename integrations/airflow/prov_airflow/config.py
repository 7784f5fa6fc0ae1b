"""The ``[provgate]`` section of airflow.cfg (or ``AIRFLOW__PROVGATE__*``): where and how to record.

=================  =======  ==========================================================
option             default  meaning
=================  =======  ==========================================================
home               ""       the provgate home (ledger, keys, trust store, embedded
                            store); empty: ``$PROVGATE_HOME``, else ``./.provgate``
create_home        True     create the home (signing key, trust store, empty ledger)
                            on first use
policy             ""       a CEL policy file for the training gate; empty: built in
listener           True     record every task instance (the plugin's listener); False
                            to record only provgate operators and ``@task.provenance``
lineage_url        ""       base URL of the lineage web view (``provgate ui``); task
                            logs then link to ``records/<log index>`` under it
=================  =======  ==========================================================

The signing key is the home's active key, or ``PROVGATE_SIGNING_KEY`` (PEM) in the
worker's environment, which a secrets backend can provide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.policy import Policy

__all__ = ["OPTIONS", "SECTION", "Settings"]

SECTION = "provgate"

#: The options of :data:`SECTION` in the provider-info ``config`` form (the one source of truth).
OPTIONS: dict[str, dict[str, Any]] = {
    "home": {
        "description": "The provgate home (ledger, keys, trust store, embedded snapshot store). "
        "Empty: $PROVGATE_HOME, else ./.provgate relative to the worker's working directory.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "/var/lib/provgate",
        "default": "",
    },
    "create_home": {
        "description": "Create the home (a signing key, trust store, empty ledger) if missing.",
        "version_added": "0.1.0",
        "type": "boolean",
        "example": None,
        "default": "True",
    },
    "policy": {
        "description": "A CEL policy file for the training gate. Empty: the built-in policy.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "/etc/provgate/policy.toml",
        "default": "",
    },
    "listener": {
        "description": "Record every task instance as a signed lineage node (the plugin's "
        "listener). False: only provgate operators and @task.provenance tasks record.",
        "version_added": "0.1.0",
        "type": "boolean",
        "example": None,
        "default": "True",
    },
    "lineage_url": {
        "description": "Base URL of the provgate lineage web view (provgate ui); task logs "
        "link to records/<log index> under it. Empty: no link.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "http://127.0.0.1:8765/",
        "default": "",
    },
}


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "t", "yes", "y", "on")


@dataclass(frozen=True)
class Settings:
    """Settings is the ``[provgate]`` section, read once per task."""

    home: str = ""
    create_home: bool = True
    policy: str = ""
    listener: bool = True
    lineage_url: str = ""

    @classmethod
    def load(cls) -> Settings:
        """Read ``[provgate]`` through Airflow's configuration (file, env, secrets)."""
        from airflow.sdk.configuration import conf

        def get(key: str) -> str:
            value = conf.get(SECTION, key, fallback=OPTIONS[key]["default"])
            return "" if value is None else str(value)

        return cls(
            home=get("home"),
            create_home=_truthy(get("create_home")),
            policy=get("policy"),
            listener=_truthy(get("listener")),
            lineage_url=get("lineage_url"),
        )

    def open_home(self, *, create: bool | None = None) -> Home:
        """The home, created on first use when ``create`` (default ``create_home``) is set."""
        from prov_core.home import init_home, open_home

        path = Path(self.home) if self.home else None
        make = self.create_home if create is None else create
        return init_home(path)[0] if make else open_home(path)

    def load_policy(self) -> Policy | None:
        """The configured policy, loaded; None for the built-in policy."""
        from prov_core.policy import Policy

        return Policy.load(self.policy) if self.policy else None

    def lineage_link(self, log_index: int) -> str | None:
        """The lineage page of a record, or None without ``lineage_url``."""
        if not self.lineage_url:
            return None
        return self.lineage_url.rstrip("/") + f"/records/{log_index}"
