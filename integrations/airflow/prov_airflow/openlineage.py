"""provgate's signature on the OpenLineage provider's events: a ``custom_run_facets`` function.

::

    [openlineage]
    transport = {"type": "http", "url": "http://marquez:5000"}
    custom_run_facets = prov_airflow.openlineage.provgate_run_facets

The provider calls :func:`provgate_run_facets` for each task event it emits; for the
``COMPLETE`` and ``FAIL`` events of a try provgate recorded, it returns the run facet
``provgate_attestation`` of that try's record (log index, envelope SHA-256, predicate
type, key id, ledger origin, checkpoint: the facet of ``provgate export openlineage``,
built by :mod:`prov_core.export.openlineage` from the ledger entry), so an OpenLineage
consumer (Marquez, DataHub, ...) sees the signed record next to Airflow's lineage. A
``START`` event, or a try with no record, gets nothing.

The provider runs this in a process it forks from the task runner (or, with
``[openlineage] execute_in_thread``, a thread) and kills it after ``[openlineage]
execution_timeout``. Nothing here calls back into Airflow: a forked process cannot use
the task runner's channel to the supervisor (under ``dag.test()`` a request such as
``ti.xcom_pull`` blocks for good, since the in-process execution API's event loop runs in
a thread the fork did not copy). The record is found from the task instance's identity
alone: first what this process recorded for the try, else the step filed under the
instance in the lineage index; the entry is read from the ledger and must hash to the
envelope SHA-256 the record was found under (the one this process appended, or the one
the index holds). The facet says where the signed record is; checking its signature and
inclusion is the consumer's (``provgate verify``, with the facet's key id and checkpoint).
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["provgate_run_facets"]

log = logging.getLogger("prov_airflow")

_RECORDED_STATES = frozenset({"success", "failed"})


def provgate_run_facets(ti: Any, ti_state: Any) -> dict[str, Any]:
    """``{"provgate_attestation": RunFacet}`` for the record of this try of ``ti``, or ``{}``.

    The ``[openlineage] custom_run_facets`` function (``func(ti, ti_state)``); never raises:
    a problem is logged and the event goes out without the facet.
    """
    state = str(getattr(ti_state, "value", ti_state)).lower()
    if state not in _RECORDED_STATES:
        return {}
    try:
        return _facets(ti)
    except Exception as exc:
        log.warning(
            "provgate: no attestation facet for %s: %s: %s",
            getattr(ti, "task_id", ti),
            type(exc).__name__,
            exc,
        )
        return {}


def _facets(ti: Any) -> dict[str, Any]:
    from prov_airflow import _node
    from prov_airflow.config import Settings
    from prov_core.export.openlineage import ATTESTATION_FACET, lineage_runs, to_openlineage

    home = Settings.load().open_home(create=False)
    mine = _node.recorded(ti)
    if mine is not None:
        index, sha = mine.log_index, mine.envelope_sha256
    else:
        found = _node.record_of(home, ti)
        if found is None:
            return {}
        index, sha = int(found["log_index"]), str(found["envelope_sha256"])
    with home.open_ledger() as ledger:
        run = next(lineage_runs(ledger, index, index + 1))
    if run.envelope_sha256 != sha:
        log.warning(
            "provgate: record %d of %s no longer hashes to %s; no attestation facet",
            index,
            _node.task_name(ti),
            sha,
        )
        return {}
    return {ATTESTATION_FACET: to_openlineage(run).run.facets[ATTESTATION_FACET]}
