"""Errors of the Prefect adapter; raised inside a task, Prefect shows them as its Failed state.

::

    Exception
    └── ProvenanceError        provenance could not be recorded or read for a task run
        └── ProvenanceRefused  the training gate refused the task's inputs (every reason)

Prefect marks a task run Failed with the exception's message, so the message
carries every reason. Both are raised inside the task run (by the wrapper
``@provenance`` puts around the task's function), never from a hook: Prefect
only logs a hook's error, and a run whose try could not be recorded must fail.
"""

from __future__ import annotations

from collections.abc import Sequence

from prov_core.errors import refusal_message

__all__ = ["ProvenanceError", "ProvenanceRefused"]


class ProvenanceError(Exception):
    """ProvenanceError fails a task run: provgate could not record or read its provenance."""


class ProvenanceRefused(ProvenanceError):
    """ProvenanceRefused fails a training task the gate refused; ``reasons`` lists every reason.

    The decision is recorded in the ledger (a signed SLSA VSA) before this is raised;
    ``vsa_log_index`` says where (None when even that could not be recorded).
    """

    def __init__(
        self, task: str, reasons: Sequence[str], *, vsa_log_index: int | None, inputs: Sequence[str]
    ) -> None:
        self.task = task
        self.reasons = tuple(reasons)
        self.vsa_log_index = vsa_log_index
        self.inputs = tuple(inputs)
        super().__init__(refusal_message(task, self.reasons, vsa_log_index))
