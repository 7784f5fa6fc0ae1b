"""Which task run a value came from: Prefect's ``id()`` lookup, checked against the value.

Prefect links a task's argument to the run that returned it by ``id(value)``
(``prefect.utilities.engine.get_state_for_result``). For objects that take a
weak reference it checks the entry still points at the same object; for the
rest (``str``, ``int``, ``tuple``, ``list``, ``dict``, ``pathlib.Path``, ...) a
freed result's address can be reused by an unrelated value, which then
matches the old run (PrefectHQ/prefect#20558). A false match would become a
*signed* input of the next record, so every result a ``@provenance`` try
returns is remembered here (:func:`remember`), and :func:`came_from` accepts
Prefect's match only if the value still matches what that run returned:

- a value that takes a weak reference: it is the very object;
- a hashable value (lists, tuples and dicts of hashable items are frozen
  first, up to :data:`MAX_ITEMS` items): same type and same hash;
- anything else: same type and length (the weakest check; such values are
  rare as task results).

A run that did not go through ``@provenance`` (a plain task, or another
process) has nothing remembered: Prefect's match stands, and such a run has
no record to link anyway.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Final
from uuid import UUID

__all__ = ["MAX_ITEMS", "came_from", "remember"]

MAX_ITEMS: Final = 10_000
"""MAX_ITEMS bounds the items frozen to hash a list, tuple or dict result."""

_lock = threading.Lock()
_returned: dict[UUID, tuple[Any, ...]] = {}


def _frozen(value: Any, budget: list[int]) -> Any:
    """_frozen is a hashable stand-in for ``value``; TypeError when there is none."""
    budget[0] -= 1
    if budget[0] < 0:
        raise TypeError("too many items to hash")
    if isinstance(value, list | tuple):
        return (type(value), tuple(_frozen(v, budget) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _frozen(v, budget)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return (type(value), frozenset(_frozen(v, budget) for v in value))
    hash(value)
    return value


def _fingerprint(value: Any) -> tuple[Any, ...]:
    try:
        return ("ref", weakref.ref(value))
    except TypeError:
        pass
    try:
        return ("hash", type(value), hash(_frozen(value, [MAX_ITEMS])))
    except TypeError:
        length = len(value) if hasattr(value, "__len__") else None
        return ("shape", type(value), length)


def _matches(fingerprint: tuple[Any, ...], value: Any) -> bool:
    kind = fingerprint[0]
    if kind == "ref":
        return bool(fingerprint[1]() is value)
    if type(value) is not fingerprint[1]:
        return False
    if kind == "hash":
        try:
            return hash(_frozen(value, [MAX_ITEMS])) == fingerprint[2]
        except TypeError:
            return False
    return (len(value) if hasattr(value, "__len__") else None) == fingerprint[2]


def remember(task_run_id: UUID, value: Any) -> None:
    """remember notes what a task run returned, for :func:`came_from` to check against."""
    fingerprint = _fingerprint(value)
    with _lock:
        _returned[task_run_id] = fingerprint


def came_from(value: Any) -> UUID | None:
    """came_from is the task run that returned ``value`` (Prefect's match, checked), or None."""
    from prefect.utilities.engine import get_state_for_result

    found = get_state_for_result(value)
    run_id = found[0].state_details.task_run_id if found else None
    if run_id is None:
        return None
    with _lock:
        fingerprint = _returned.get(run_id)
    if fingerprint is not None and not _matches(fingerprint, value):
        return None  # a recycled id: the value is not what that run returned
    return run_id
