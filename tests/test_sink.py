"""Outputs hashed as they are written (prov_core.sink): the digest is of the bytes stored."""

from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prov_core import sink
from prov_core.digest import digest_bytes, digest_path
from prov_core.errors import InputError
from prov_core.sink import NOTE_MIN_SIZE, copy_into, open_output, written_digest
from prov_core.step import Artifact

from .conftest import Cli


def _digest_cli(cli: Cli, path: Path) -> str:
    """What ``provgate digest PATH`` prints for the stored file (it always reads the file)."""
    result = cli("digest", str(path))
    assert result.code == 0, result.err
    return result.out.split()[0]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".provgate-tmp"))


# Chunks chosen to cross every path of the sink: tiny writes gathered into one
# chunk, writes just under and over the gathering limit, one larger than the
# copy chunk, a bytearray and a memoryview (copied before hashing), and an empty write.
CHUNKS = [
    b"PAR1",
    os.urandom(100),
    b"",
    os.urandom((256 << 10) - 1),
    os.urandom(256 << 10),
    os.urandom(3 << 20),
    bytearray(os.urandom(999_999)),
    memoryview(os.urandom(12_345)),
    *(os.urandom(69) for _ in range(500)),
    os.urandom(9 << 20),
]


def test_multi_chunk_write_matches_provgate_digest_of_stored_file(tmp_path: Path, cli: Cli) -> None:
    target = tmp_path / "out.bin"
    with open_output(target) as f:
        for chunk in CHUNKS:
            assert f.write(chunk) == len(memoryview(chunk).cast("B"))
        assert f.tell() == sum(len(memoryview(c).cast("B")) for c in CHUNKS)
    stored = target.read_bytes()
    assert stored == b"".join(bytes(c) for c in CHUNKS)
    assert f.result is not None
    assert f.result.blake3 == _digest_cli(cli, target) == digest_bytes(stored)
    assert f.result.size == len(stored)
    assert f.result.path == str(target)
    assert written_digest(target.stat()) == f.result.blake3
    assert _leftovers(tmp_path) == []


def test_empty_output(tmp_path: Path, cli: Cli) -> None:
    target = tmp_path / "empty"
    with open_output(target) as f:
        pass
    assert target.read_bytes() == b""
    assert f.result is not None
    assert f.result.blake3 == _digest_cli(cli, target) == digest_bytes(b"")
    assert Artifact.from_path(target, reuse_written=True) == Artifact.from_path(target)


def test_mutating_a_written_buffer_afterwards_changes_nothing(tmp_path: Path) -> None:
    buf = bytearray(b"a" * (1 << 20))
    with open_output(tmp_path / "x") as f:
        f.write(buf)
        buf[:] = b"b" * len(buf)  # the worker may still be hashing: it got a copy
        f.write(buf)
    assert f.result is not None
    assert f.result.blake3 == digest_path(tmp_path / "x").blake3


def test_parquet_written_through_the_sink(tmp_path: Path, cli: Cli) -> None:
    table = pa.table({"id": list(range(200_000)), "text": [f"row {i}" for i in range(200_000)]})
    target = tmp_path / "t.parquet"
    with open_output(target) as f:
        pq.write_table(table, f, compression="none", data_page_size=1 << 16)
    assert f.result is not None
    assert f.result.blake3 == _digest_cli(cli, target)
    assert pq.read_table(target).equals(table)


def test_artifact_reuses_the_written_digest_with_the_same_subject(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    with open_output(target) as f:
        f.write(os.urandom(5 << 20))
    assert written_digest(target.stat()) == f.result.blake3  # type: ignore[union-attr]
    reused = Artifact.from_path(target, name="model", reuse_written=True)
    assert reused == Artifact.from_path(target, name="model")
    assert f.result is not None
    assert reused.blake3 == f.result.blake3


def test_failure_inside_the_block_stores_nothing(tmp_path: Path) -> None:
    target = tmp_path / "half.bin"
    f = open_output(target)

    def transform() -> None:
        with f:
            f.write(os.urandom(3 << 20))
            raise RuntimeError("transform failed")

    with pytest.raises(RuntimeError, match="transform failed"):
        transform()
    assert not target.exists()
    assert f.result is None
    assert f.closed
    assert _leftovers(tmp_path) == []


def test_failure_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "kept.bin"
    target.write_bytes(b"previous")

    def transform() -> None:
        with open_output(target) as f:
            f.write(b"new bytes")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        transform()
    assert target.read_bytes() == b"previous"
    assert written_digest(target.stat()) is None


def test_a_write_that_fails_in_the_os_stores_nothing(tmp_path: Path) -> None:
    """A real EFBIG halfway through (a file-size limit), in a child process."""
    code = f"""
import os, resource, signal, sys
from pathlib import Path
from prov_core import sink
from prov_core.errors import InputError
from prov_core.sink import open_output, written_digest
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))
target = Path({str(tmp_path / "big.bin")!r})
f = open_output(target)
try:
    for _ in range(8):
        f.write(os.urandom(1 << 20))
except InputError as exc:
    print("write failed:", exc)
try:
    f.close()
except InputError as exc:
    print("close refused:", exc)
print("exists", target.exists(), f.result)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "write failed:" in out.stdout
    assert "cannot write: File too large" in out.stdout
    assert "close refused:" in out.stdout
    assert "earlier write failed" in out.stdout
    assert out.stdout.strip().endswith("exists False None")
    assert not (tmp_path / "big.bin").exists()
    assert _leftovers(tmp_path) == []


def test_a_sink_dropped_without_close_is_discarded(tmp_path: Path) -> None:
    target = tmp_path / "dropped.bin"
    f = open_output(target)
    f.write(os.urandom(2 << 20))
    del f
    gc.collect()
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_replaces_an_existing_file(tmp_path: Path, cli: Cli) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"old old old")
    with open_output(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert f.result is not None
    assert f.result.blake3 == _digest_cli(cli, target)


def test_append_only_no_seek_read_or_descriptor(tmp_path: Path) -> None:
    with open_output(tmp_path / "o") as f:
        f.write(b"abc")
        assert f.writable()
        assert not f.seekable()
        assert not f.readable()
        for call in (lambda: f.seek(0), f.read, f.fileno, lambda: f.truncate(0)):
            with pytest.raises(io.UnsupportedOperation):
                call()
    with pytest.raises(ValueError, match="closed"):
        f.write(b"more")
    assert f.result is not None
    assert f.result.size == 3


@pytest.fixture(params=["probed", "clock-wait"])
def ctime_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways close makes a later change visible: the probed file-system guarantee,
    and (as on a file system without multigrain timestamps) waiting for the clock."""
    monkeypatch.setattr(sink, "_ctime_moves", {})
    if request.param == "clock-wait":
        monkeypatch.setattr(sink, "_ctime_moves_after_stat", lambda directory, dev: False)
    return str(request.param)


def test_a_change_after_close_is_never_taken_for_the_written_bytes(
    tmp_path: Path, ctime_guard: str
) -> None:
    """Same size, same inode, right after close: the noted digest is no longer used."""
    target = tmp_path / "o.bin"
    with open_output(target) as f:
        f.write(b"x" * NOTE_MIN_SIZE)
    assert written_digest(target.stat()) == f.result.blake3  # type: ignore[union-attr]
    with open(target, "r+b") as g:  # one byte rewritten in place, same length
        g.write(b"y")
    assert written_digest(target.stat()) is None
    changed = b"y" + b"x" * (NOTE_MIN_SIZE - 1)
    assert Artifact.from_path(target, reuse_written=True).blake3 == digest_bytes(changed)
    touched = tmp_path / "t.bin"
    with open_output(touched) as f:
        f.write(b"z" * NOTE_MIN_SIZE)
    os.utime(touched, ns=(0, 0))  # metadata only: the bytes are the same, still re-read
    assert written_digest(touched.stat()) is None


def test_small_files_are_not_noted_and_read_back(tmp_path: Path) -> None:
    target = tmp_path / "small.bin"
    with open_output(target) as f:
        f.write(b"s" * (NOTE_MIN_SIZE - 1))
    assert written_digest(target.stat()) is None
    assert f.result is not None
    assert digest_path(target, reuse_written=True).blake3 == f.result.blake3


def test_a_new_file_on_the_same_path_is_not_the_written_one(
    tmp_path: Path, ctime_guard: str
) -> None:
    target = tmp_path / "o.bin"
    with open_output(target) as f:
        f.write(b"a" * NOTE_MIN_SIZE)
    assert written_digest(target.stat()) is not None
    target.unlink()
    target.write_bytes(b"b" * NOTE_MIN_SIZE)  # may reuse the inode
    assert written_digest(target.stat()) is None
    assert digest_path(target, reuse_written=True).blake3 == digest_bytes(b"b" * NOTE_MIN_SIZE)


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope/out: cannot write"):
        open_output(tmp_path / "nope" / "out")


def test_sinks_in_parallel_threads(tmp_path: Path) -> None:
    payloads = {f"f{i}": os.urandom((i + 1) << 20) for i in range(4)}
    results = {}

    def write(name: str) -> None:
        with open_output(tmp_path / name) as f:
            data = memoryview(payloads[name])
            for start in range(0, len(data), 300_000):
                f.write(data[start : start + 300_000])
        results[name] = f.result

    threads = [threading.Thread(target=write, args=(n,)) for n in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, data in payloads.items():
        assert results[name].blake3 == digest_bytes(data) == digest_path(tmp_path / name).blake3


@pytest.mark.parametrize("size", [0, 1, (8 << 20) - 1, (8 << 20) * 2 + 12345])
def test_copy_into_digests_the_stored_copy(tmp_path: Path, cli: Cli, size: int) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(size))
    zone = tmp_path / "raw"
    zone.mkdir()
    written = copy_into(source, zone / "copy.bin")
    assert (zone / "copy.bin").read_bytes() == source.read_bytes()
    assert written.blake3 == _digest_cli(cli, zone / "copy.bin")
    assert written.size == size
    tree = digest_path(zone, reuse_written=True)  # a directory of collected files
    assert tree == digest_path(zone)
    assert _leftovers(zone) == []


def test_copy_into_missing_source_stores_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"src\.bin: cannot read"):
        copy_into(tmp_path / "src.bin", tmp_path / "dst.bin")
    assert not (tmp_path / "dst.bin").exists()
    assert _leftovers(tmp_path) == []
    with pytest.raises(InputError, match="not a regular file"):
        copy_into(tmp_path, tmp_path / "dst.bin")


def test_ctime_probe_leaves_nothing_and_is_kept_per_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink, "_ctime_moves", {})
    dev = tmp_path.stat().st_dev
    answer = sink._ctime_moves_after_stat(str(tmp_path), dev)
    assert sink._ctime_moves == {dev: answer}
    assert list(tmp_path.iterdir()) == []
    assert sink._ctime_moves_after_stat(str(tmp_path / "missing"), dev) is answer  # cached
    assert sink._ctime_moves_after_stat(str(tmp_path / "missing"), dev + 1) is False


# Python 3.12+ warns on fork() in a process with threads (the xdist worker, the sink's
# own worker); this child only closes a file descriptor and exits.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_cannot_finish_or_discard_the_parents_output(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    f = open_output(target)
    f.write(os.urandom(3 * NOTE_MIN_SIZE))  # past one batch: the hashing worker is running
    pid = os.fork()
    if pid == 0:  # the child: closing refuses, dropping leaves the parent's file alone
        code = 0
        try:
            f.close()
            code = 1
        except InputError as exc:
            code = 0 if "was opened in process" in str(exc) else 2
        del f
        gc.collect()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    f.write(b"more")
    f.close()  # the parent finishes its file as if nothing happened
    assert f.result is not None
    assert f.result.blake3 == digest_path(target).blake3
    assert _leftovers(tmp_path) == []
