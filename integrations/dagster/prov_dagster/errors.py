"""Errors of the Dagster adapter; the root subclasses ``dagster.Failure``, so the UI shows ours.

::

    dagster.Failure
    └── ProvenanceError        provenance could not be recorded or read for an asset
        └── ProvenanceRefused  the training gate refused the asset's inputs (every reason)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import Failure

from prov_core.errors import refusal_message

__all__ = ["ProvenanceError", "ProvenanceRefused"]


class ProvenanceError(Failure):
    """ProvenanceError fails the step: provgate could not record or find an asset's provenance.

    Not retried: the same inputs give the same error.
    """

    def __init__(self, description: str, metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__(description=description, metadata=metadata, allow_retries=False)


class ProvenanceRefused(ProvenanceError):
    """ProvenanceRefused fails a training step the gate refused; ``reasons`` lists every reason.

    The decision itself is recorded in the ledger (a signed SLSA VSA) before this is raised;
    ``vsa_log_index`` says where (None when even that could not be recorded).
    """

    def __init__(
        self,
        asset: str,
        reasons: Sequence[str],
        *,
        vsa_log_index: int | None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.reasons = tuple(reasons)
        self.vsa_log_index = vsa_log_index
        super().__init__(
            refusal_message(asset, self.reasons, vsa_log_index),
            metadata=metadata,
        )
