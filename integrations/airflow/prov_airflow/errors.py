"""Errors of the Airflow adapter; the root subclasses ``AirflowException`` (the log shows ours).

::

    AirflowException
    └── ProvenanceError            provgate could not record or read a task's provenance
        └── ProvenanceRefused      the training gate refused (every reason); also an
                                   AirflowFailException: a refusal is never retried
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from prov_core.errors import refusal_message

if TYPE_CHECKING:
    from prov_core.step import Attestation

__all__ = ["ProvenanceError", "ProvenanceRefused"]


class ProvenanceError(AirflowException):
    """ProvenanceError fails the task: provgate could not record or find its provenance."""


class ProvenanceRefused(ProvenanceError, AirflowFailException):
    """ProvenanceRefused fails a training task the gate refused; ``reasons`` lists every reason.

    The decision is recorded in the ledger (a signed SLSA VSA) before this is raised;
    ``vsa_log_index`` says where and ``vsa`` is its attestation (None when even that could
    not be recorded). Not retried: the same inputs are refused again.
    """

    def __init__(
        self,
        task: str,
        reasons: Sequence[str],
        *,
        vsa_log_index: int | None,
        vsa: Attestation | None = None,
    ) -> None:
        self.reasons = tuple(reasons)
        self.vsa_log_index = vsa_log_index
        self.vsa = vsa
        super().__init__(refusal_message(task, self.reasons, vsa_log_index))
