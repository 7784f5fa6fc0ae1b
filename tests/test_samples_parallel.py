"""Row ids and roots hashed in worker processes: the same bytes as in-process, errors mapped."""

from __future__ import annotations

import hashlib
import shutil
import sys

import pyarrow as pa
import pytest

from prov_core import _rows, _samples
from prov_core import digest as d
from prov_core.errors import CanonicalizationError, InputError, ProvgateError
from prov_core.ledger import merkle


def _table(n: int) -> pa.Table:
    return pa.table(
        {
            "i": pa.array([i if i % 11 else None for i in range(n)], pa.int64()),
            "f": pa.array([i / 7 for i in range(n)], pa.float32()),
            "s": pa.array([f"row-{i}" * (i % 5) for i in range(n)], pa.string()),
            "b": pa.array([bytes([i % 256]) * (i % 3) for i in range(n)], pa.binary()),
            "d": pa.array([i * 86_400_000 for i in range(n)], pa.timestamp("ms", "UTC")),
        }
    )


@pytest.fixture
def small_jobs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """small_jobs sends even tiny tables to two worker processes, in many small jobs.

    It returns a list that grows by one for each worker process started.
    """
    monkeypatch.setenv(_samples.HASH_PROCESSES_ENV, "2")
    monkeypatch.setattr(_rows, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(_rows, "PARALLEL_BATCH_ROWS", 37)
    monkeypatch.setattr(_rows, "TREE_BLOCK_IDS", 16)
    monkeypatch.setattr(_rows, "_BUCKET_MIN_IDS", 4)
    started: list[int] = []
    real_handshake = _samples._Worker._handshake

    def counting_handshake(self: _samples._Worker) -> None:
        real_handshake(self)
        started.append(1)

    monkeypatch.setattr(_samples._Worker, "_handshake", counting_handshake)
    return started


def _serial(table: pa.Table, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, _samples.SampleSet]:
    monkeypatch.setenv(_samples.HASH_PROCESSES_ENV, "0")
    try:
        return _rows.row_ids_blob(table), d.sample_set_of_table(table)
    finally:
        monkeypatch.setenv(_samples.HASH_PROCESSES_ENV, "2")


@pytest.mark.parametrize("n", [1, 2, 36, 37, 38, 500])
def test_processes_give_the_same_ids_and_root_as_in_process(
    small_jobs: list[int], monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    table = _table(n)
    blob, samples = _serial(table, monkeypatch)
    done: list[int] = []
    assert _rows.row_ids_blob(table, progress=done.append) == blob
    assert sum(done) == n
    parallel = d.sample_set_of_table(table)
    assert parallel.sorted_ids() == samples.sorted_ids()
    assert parallel.root == samples.root == merkle.root_of(sorted(d.row_ids(table)))
    assert small_jobs, "no worker process was started"
    # a slice (non-zero offsets) and a table that carries its verified ids
    assert _rows.row_ids_blob(table.slice(n // 3)) == blob[n // 3 * 32 :]
    assert d.sample_set_of_table(d.add_row_ids(table)).root == samples.root


def test_processes_hash_a_table_without_columns(
    small_jobs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table(100).select([])
    blob, samples = _serial(table, monkeypatch)
    assert blob == hashlib.sha256(b"\x00").digest() * 100
    assert _rows.row_ids_blob(table) == blob
    assert d.sample_set_of_table(table).root == samples.root


def test_processes_report_bad_rows_as_in_process(small_jobs: list[int]) -> None:
    nested = pa.table({"x": list(range(100)), "l": [[i] for i in range(100)]})
    with pytest.raises(CanonicalizationError, match="'l'"):
        d.sample_set_of_table(nested)


def test_sorted_ids_and_root_in_processes(small_jobs: list[int]) -> None:
    ids = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1000)]
    sorted_blob, root = _rows.sorted_ids_and_root(b"".join(ids))
    assert sorted_blob == b"".join(sorted(ids))
    assert root == merkle.root_of(sorted(ids))


def test_a_failing_worker_job_is_a_provgate_error() -> None:
    with _samples.HashPool(1) as pool:
        ok = pool.submit(lambda: (b"T", bytes(64), b"")).result()
        assert ok == hashlib.sha256(b"\x01" + bytes(64)).digest()
        with pytest.raises(ProvgateError, match="hashing worker process failed: error"):
            pool.submit(lambda: (b"L", b"=5s", b"abc")).result()  # struct.error in the worker
        # the worker answers the next job after a failed one
        assert pool.submit(lambda: (b"L", b"=1s2s", b"abc")).result() == (
            hashlib.sha256(b"a").digest() + hashlib.sha256(b"bc").digest()
        )


def test_a_worker_that_dies_is_a_provgate_error() -> None:
    with _samples.HashPool(1) as pool:
        pool.submit(lambda: (b"T", bytes(32), b"")).result()  # the worker is up
        (worker,) = pool._workers
        worker._proc.kill()
        worker._proc.wait()
        with pytest.raises(ProvgateError, match="hashing worker process died: exit code -9"):
            pool.submit(lambda: (b"T", bytes(64), b"")).result()


def test_without_worker_processes_the_pool_hashes_in_process(
    small_jobs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table(200)
    blob, samples = _serial(table, monkeypatch)
    true = shutil.which("true")
    for executable in ["", "/nonexistent/python", *([true] if true else [])]:
        monkeypatch.setattr(sys, "executable", executable)
        assert _rows.row_ids_blob(table) == blob
        assert d.sample_set_of_table(table).root == samples.root
    assert small_jobs == []


def test_hash_processes_threshold_and_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _samples.HASH_PROCESSES_ENV
    monkeypatch.setenv(env, "3")
    assert _samples.hash_processes(99, 100) == 0  # small inputs stay in-process
    assert _samples.hash_processes(100, 100) == 3
    for off in ("0", "1"):
        monkeypatch.setenv(env, off)
        assert _samples.hash_processes(10**9, 100) == 0
    monkeypatch.setenv(env, "many")
    with pytest.raises(InputError, match=env):
        _samples.hash_processes(10**9, 100)
    monkeypatch.delenv(env)
    assert 0 <= _samples.hash_processes(10**9, 100) <= _samples.MAX_HASH_PROCESSES


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 9, 100])
def test_root_of_blocks_is_the_root_of_the_whole(n: int) -> None:
    ids = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
    whole = merkle.root_of(ids)
    assert _samples.root_of_level(b"".join(ids)) == whole
    for block in (1, 2, 4, 8):
        tops = [_samples.root_of_level(b"".join(ids[i : i + block])) for i in range(0, n, block)]
        assert _samples.root_of_level(b"".join(tops)) == whole
    with pytest.raises(InputError):
        _samples.root_of_level(b"")
