"""ProvenanceResource: where provgate records (the home), with which policy, and where to link.

Wire it once in ``Definitions(resources={"provenance": ProvenanceResource(...)})``;
every :func:`~prov_dagster.provenance_asset` and ``provenance_verified`` check uses it.
The signing key is the home's active key, or ``PROVGATE_SIGNING_KEY`` (PEM) from the
code location's environment, so Dagster's own secret handling can hand a worker its key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import AssetKey, ConfigurableResource
from pydantic import Field

if TYPE_CHECKING:
    from prov_core.home import Home
    from prov_core.inference import InferenceTracer, ModelRef
    from prov_core.policy import Policy
    from prov_core.step import Attestation

__all__ = ["RESOURCE_KEY", "ProvenanceResource"]

RESOURCE_KEY = "provenance"
"""RESOURCE_KEY is the resource key provenance assets and checks require."""


class ProvenanceResource(ConfigurableResource):  # type: ignore[misc]
    """Where and how provgate records the assets of a code location."""

    home: str | None = Field(
        default=None,
        description="The provgate home (ledger, keys, trust store, embedded store); "
        "default $PROVGATE_HOME or ./.provgate.",
    )
    create_home: bool = Field(
        default=True,
        description="Create the home (a signing key, trust store, empty ledger) if it is missing.",
    )
    policy: str | None = Field(
        default=None,
        description="A CEL policy file (provgate policies) for the training gate and for "
        "inference; default: the built-in policies.",
    )
    lineage_url: str | None = Field(
        default="http://127.0.0.1:8765/",
        description="Base URL of the provgate lineage web view (`provgate ui`); each "
        "materialization links to records/<log index> under it. None: no link.",
    )

    def open_home(self) -> Home:
        """The home, created on first use when ``create_home`` is set."""
        from prov_core.home import init_home, open_home

        path = Path(self.home) if self.home else None
        if self.create_home:
            return init_home(path)[0]
        return open_home(path)

    def load_policy(self) -> Policy | None:
        """The configured policy file, loaded; None for the built-in policy."""
        from prov_core.policy import Policy

        return Policy.load(self.policy) if self.policy else None

    def tracer(self, **kwargs: Any) -> InferenceTracer:
        """An inference tracer on the home: the default inference rules plus ``policy``."""
        from prov_core.inference import InferenceTracer
        from prov_core.policy import AllOf, Policy

        if "policy" not in kwargs and self.policy:
            kwargs["policy"] = AllOf([Policy.default_inference(), Policy.load(self.policy)])
        return InferenceTracer.from_home(self.open_home(), **kwargs)

    def lineage_link(self, log_index: int) -> str | None:
        """The lineage page of a record, or None without ``lineage_url``."""
        if not self.lineage_url:
            return None
        return self.lineage_url.rstrip("/") + f"/records/{log_index}"

    # -- reading what upstream assets recorded ------------------------------------------

    def attestation(self, context: Any, asset: Any, partition: str | None = None) -> Attestation:
        """The attestation of ``asset``'s latest materialization (of ``partition``)."""
        from prov_dagster.asset import latest_provenance

        return latest_provenance(context.instance, AssetKey.from_coercible(asset), partition)[0]

    def snapshot_uri(self, context: Any, asset: Any, path: str = "") -> str:
        """The pinned URI (``SCHEME://REPO/COMMIT[/PATH]``) a snapshot asset last committed."""
        from prov_dagster.asset import latest_provenance
        from prov_dagster.errors import ProvenanceError

        key = AssetKey.from_coercible(asset)
        uri = latest_provenance(context.instance, key, None)[1].get("snapshot_uri")
        if not uri:
            raise ProvenanceError(f"asset {key.to_user_string()} did not commit a snapshot")
        return f"{uri}/{path.strip('/')}" if path else str(uri)

    def model(self, context: Any, asset: Any, name: str | None = None) -> ModelRef:
        """The model a training asset last produced, for :meth:`tracer`'s ``trace``."""
        from prov_core.inference import ModelRef

        key = AssetKey.from_coercible(asset)
        training = self.attestation(context, key)
        return ModelRef(
            training.subjects[0].sha256, training=training, name=name or key.to_user_string()
        )

    def read_snapshot(self, uri: str) -> dict[str, bytes]:
        """Every object under a snapshot URI (``SCHEME://REPO/REF[/PATH]``): path -> bytes."""
        from prov_core.snapshot_record import read_snapshot

        return read_snapshot(uri, self.open_home())
