"""File and directory digests: b3sum compatibility, manifests, links, bad input."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import blake3
import pytest

from prov_core import digest as d
from prov_core.errors import InputError

B3SUM = shutil.which("b3sum")


def _b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def test_digest_bytes_is_blake3() -> None:
    assert d.digest_bytes(b"") == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert d.digest_bytes(b"abc") == _b3(b"abc")


@pytest.mark.parametrize(
    "size", [0, 1, 1023, 1024, 1025, (1 << 20) + 7, d.MULTITHREAD_MIN_SIZE + 3]
)
def test_file_digest_matches_blake3_on_both_paths(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    f = tmp_path / "f.bin"
    f.write_bytes(data)
    seen: list[int] = []
    tree = d.digest_path(f, progress=seen.append)
    assert tree.blake3 == _b3(data)
    assert tree.bytes == size
    assert not tree.is_dir
    assert tree.files == [d.FileDigest("f.bin", _b3(data), size)]
    assert sum(seen) == size
    # No progress callback: the multi-threaded path hashes from a memory map in one call.
    assert d.digest_path(f).blake3 == _b3(data)
    assert d.digest_file(f) == _b3(data)


def test_single_file_subject_is_sha256_of_one_line_manifest(tmp_path: Path) -> None:
    f = tmp_path / "data.csv"
    f.write_bytes(b"a,b\n1,2\n")
    tree = d.digest_path(f)
    content = b"a,b\n1,2\n"
    line = _b3(content).encode() + b"  data.csv\n"
    assert tree.manifest() == line
    assert tree.sha256_subject == hashlib.sha256(line).hexdigest()
    assert d.manifest_sha256([("data.csv", tree.blake3)]) == tree.sha256_subject


def _make_tree(root: Path, order: list[str]) -> None:
    files = {"b.txt": b"bee", "a/x.bin": b"\x00" * 10, "a/y": b"why", "c d/é.txt": b"accent"}
    for name in order:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(files[name])


def test_directory_manifest_exact_bytes(tmp_path: Path) -> None:
    _make_tree(tmp_path, ["b.txt", "a/x.bin", "a/y", "c d/é.txt"])
    (tmp_path / "empty" / "nested").mkdir(parents=True)  # empty directories add nothing
    tree = d.digest_path(tmp_path)
    zeros = bytes(10)
    expected = (
        f"{_b3(zeros)}  a/x.bin\n"
        f"{_b3(b'why')}  a/y\n"
        f"{_b3(b'bee')}  b.txt\n"
        f"{_b3(b'accent')}  c d/é.txt\n"
    ).encode()
    assert tree.manifest() == expected
    assert tree.blake3 == _b3(expected)
    assert tree.sha256_subject == hashlib.sha256(expected).hexdigest()
    assert tree.bytes == 10 + 3 + 3 + 6
    assert tree.is_dir
    assert [f.path for f in tree.files] == ["a/x.bin", "a/y", "b.txt", "c d/é.txt"]


def test_directory_digest_stable_under_creation_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _make_tree(one, ["b.txt", "a/x.bin", "a/y", "c d/é.txt"])
    _make_tree(two, ["c d/é.txt", "a/y", "b.txt", "a/x.bin"])
    assert d.digest_path(one) == d.digest_path(two)


def test_manifest_sorts_by_utf8_bytes_not_code_points() -> None:
    # U+FF61 (EF BD A1) sorts before U+10000 (F0 90 80 80) in UTF-8 but after it in UTF-16.
    entries = [("\U00010000", "0" * 64), ("\uff61", "1" * 64), ("Z", "2" * 64), ("a", "3" * 64)]
    lines = d.manifest_bytes(entries).decode().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == ["Z", "a", "\uff61", "\U00010000"]


def test_empty_directory(tmp_path: Path) -> None:
    tree = d.digest_path(tmp_path)
    assert tree.files == []
    assert tree.bytes == 0
    assert tree.blake3 == _b3(b"")
    assert tree.sha256_subject == hashlib.sha256(b"").hexdigest()


def test_escaped_names_as_b3sum_writes_them(tmp_path: Path) -> None:
    (tmp_path / "back\\slash").write_bytes(b"a")
    (tmp_path / "new\nline").write_bytes(b"b")
    manifest = d.digest_path(tmp_path).manifest()
    a, b = _b3(b"a").encode(), _b3(b"b").encode()
    assert manifest == b"\\" + a + b"  back\\\\slash\n" + b"\\" + b + b"  new\\nline\n"


@pytest.mark.skipif(B3SUM is None, reason="b3sum is not installed")
def test_manifest_is_b3sum_output(tmp_path: Path) -> None:
    _make_tree(tmp_path, ["b.txt", "a/x.bin", "a/y", "c d/é.txt"])
    (tmp_path / "back\\slash").write_bytes(b"a")
    (tmp_path / "new\nline").write_bytes(b"b")
    tree = d.digest_path(tmp_path)
    paths = [f.path for f in tree.files]
    out = subprocess.run([B3SUM, "--", *paths], cwd=tmp_path, capture_output=True, check=True)
    assert out.stdout == tree.manifest()
    single = subprocess.run([B3SUM, "b.txt"], cwd=tmp_path, capture_output=True, check=True)
    assert single.stdout.split()[0].decode() == d.digest_path(tmp_path / "b.txt").blake3
    (tmp_path / "MANIFEST").write_bytes(tree.manifest())
    check = subprocess.run(
        [B3SUM, "--check", "MANIFEST"], cwd=tmp_path, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_link_inside_tree_is_hashed_as_its_target(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_bytes(b"content")
    (tmp_path / "link.txt").symlink_to("real.txt")
    tree = d.digest_path(tmp_path)
    assert [(f.path, f.blake3) for f in tree.files] == [
        ("link.txt", _b3(b"content")),
        ("real.txt", _b3(b"content")),
    ]


@pytest.mark.parametrize("kind", ["outside", "dangling", "directory"])
def test_other_links_are_refused(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_bytes(b"x")
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    target = {"outside": outside, "dangling": root / "missing", "directory": root}[kind]
    (root / "bad").symlink_to(target)
    with pytest.raises(InputError, match="bad"):
        d.digest_path(root)


def test_top_level_link_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_bytes(b"content")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    assert d.digest_path(tmp_path / "link.txt").blake3 == _b3(b"content")


def test_missing_path_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        d.digest_path(tmp_path / "nope")
    with pytest.raises(InputError, match="no such file"):
        d.digest_file(tmp_path / "nope")


def test_special_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match="fifo"):
        d.digest_path(tmp_path)
    with pytest.raises(InputError, match="not a regular file"):
        d.digest_path(tmp_path / "fifo")


def test_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    if len(str(path)) > 100:
        pytest.skip("socket path too long for AF_UNIX")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(InputError, match=r"s\.sock"):
            d.digest_path(tmp_path)


def test_unreadable_file_is_input_error(tmp_path: Path) -> None:
    f = tmp_path / "locked.bin"
    f.write_bytes(b"x")
    f.chmod(0)
    try:
        if os.access(f, os.R_OK):  # root reads anything: chmod cannot make it unreadable
            pytest.skip("running as a user who can read mode-000 files (root)")
        with pytest.raises(InputError, match=r"locked\.bin: cannot read"):
            d.digest_path(tmp_path)
    finally:
        f.chmod(0o644)


def test_unopenable_file_is_input_error_even_as_root(tmp_path: Path) -> None:
    # chmod 000 does not stop root, so open something no one can read as a file: a
    # directory (what a file replaced by a directory between listing and reading is).
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match=r"sub: cannot read"):
        d._hash_file(str(tmp_path / "sub"), 10, None)


def test_unreadable_directory_is_input_error(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "f").write_bytes(b"x")
    sub.chmod(0)
    try:
        if os.access(sub, os.R_OK):
            pytest.skip("running as a user who can read mode-000 directories (root)")
        with pytest.raises(InputError, match="sub"):
            d.digest_path(tmp_path)
    finally:
        sub.chmod(0o755)


@pytest.mark.skipif(
    sys.platform != "linux", reason="non-UTF-8 names need a byte-oriented filesystem"
)
def test_non_utf8_name_is_refused(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/bad\xff.txt"
    with open(raw, "wb") as f:
        f.write(b"x")
    with pytest.raises(InputError, match="not valid UTF-8"):
        d.digest_path(tmp_path)


def test_module_entry_point_prints_b3sum_lines(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_bytes(b"hello")
    out = subprocess.run(
        [sys.executable, "-m", "prov_core.digest", str(f)],
        capture_output=True,
        check=True,
        text=True,
    )
    assert out.stdout == f"{_b3(b'hello')}  {f}\n"
    bad = subprocess.run(
        [sys.executable, "-m", "prov_core.digest", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "no such file" in bad.stderr


def test_digest_import_does_not_load_pyarrow() -> None:
    code = "import sys, prov_core.digest; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == "False"


def test_public_surface() -> None:
    public = {
        name
        for name, value in vars(d).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("prov_core")
        and getattr(value, "__module__", "") != "prov_core.errors"
    }
    assert public <= set(d.__all__)
    assert all(hasattr(d, name) for name in d.__all__)
