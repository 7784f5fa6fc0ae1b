"""Bad input: one clear error each, exit code 2, nothing half-written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Cli, Result


def _ingest(cli: Cli, path: Path, license: str = "CC0-1.0") -> Result:
    return cli("ingest", str(path), "--source", "https://example.org/x", "--license", license)


def _snapshot(home: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def _entries(cli: Cli) -> int:
    result = cli("verify", "--json")
    assert result.code == 0, result.out
    return int(result.json()["entries"])


@pytest.fixture
def ready(cli: Cli, data: Path) -> Cli:
    assert cli("init").code == 0
    assert _ingest(cli, data / "docs").code == 0
    return cli


def _assert_refused(cli: Cli, args: tuple[str, ...], *needles: str) -> None:
    before = _entries(cli)
    result = cli(*args)
    assert result.code == 2, (result.out, result.err)
    assert result.out == ""
    message = result.err.lower()
    for needle in needles:
        assert needle.lower() in message, result.err
    assert "traceback" not in message
    assert _entries(cli) == before


def test_missing_path(ready: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.csv"
    _assert_refused(
        ready, ("ingest", str(missing), "--source", "s:x", "--license", "MIT"), str(missing)
    )


def test_unknown_license(ready: Cli, data: Path) -> None:
    _assert_refused(
        ready,
        ("ingest", str(data / "reviews.csv"), "--source", "s:x", "--license", "Apache-2"),
        "Apache-2",
        "LicenseRef-",
    )


def test_malformed_csv(ready: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text('a,b\n1,2\n3,4,5\n"unterminated\n')
    _assert_refused(ready, ("ingest", str(bad), "--source", "s:x", "--license", "MIT"), "bad.csv")


def test_malformed_parquet(ready: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1" + os.urandom(200))
    _assert_refused(
        ready, ("ingest", str(bad), "--source", "s:x", "--license", "MIT"), "bad.parquet"
    )


def test_malformed_jsonl(ready: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n')
    _assert_refused(ready, ("ingest", str(bad), "--source", "s:x", "--license", "MIT"), "bad.jsonl")


def test_unreadable_file(tmp_path: Path, data: Path) -> None:
    """A file the process may not read: refused by name, nothing appended.

    Tests often run as root, who reads anything: then the CLI runs without the
    capabilities that bypass file permissions (``setpriv`` drops them).
    """
    exe = Path(sys.executable).with_name("provgate")
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv (util-linux) is missing")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    docs = tmp_path / "docs"
    shutil.copytree(data / "docs", docs)
    secret = docs / "secret.md"
    secret.write_text("not for you\n")
    secret.chmod(0o000)
    env = {**os.environ, "PROVGATE_HOME": str(tmp_path / "home")}
    env.pop("PROVGATE_SIGNING_KEY", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, exe, *args], capture_output=True, text=True, env=env)

    assert run("init").returncode == 0
    result = run("ingest", str(docs), "--source", "s:x", "--license", "MIT")
    assert result.returncode == 2, result.stderr
    assert "secret.md" in result.stderr
    assert "Traceback" not in result.stderr
    assert run("log", "checkpoint").returncode != 0  # nothing was appended


@pytest.mark.parametrize("victim", ["config.json", "trust.json", "ledger.sqlite"])
def test_corrupted_home(ready: Cli, data: Path, victim: str) -> None:
    path = ready.home / victim
    path.write_bytes(b"\x00garbage\xff" * 50)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    before = _snapshot(ready.home)
    result = _ingest(ready, data / "docs")
    assert result.code == 2, (result.out, result.err)
    assert victim in result.err
    assert "Traceback" not in result.err
    assert _snapshot(ready.home) == before


def test_missing_home_says_how_to_fix(cli: Cli, data: Path) -> None:
    result = _ingest(cli, data / "docs")
    assert result.code == 2
    assert "provgate init" in result.err


def test_group_readable_key_refused(ready: Cli, data: Path) -> None:
    key = next((ready.home / "keys").iterdir())
    key.chmod(0o644)
    result = _ingest(ready, data / "docs")
    assert result.code == 2
    assert "chmod" in result.err


def test_usage_errors_exit_2(ready: Cli) -> None:
    assert ready("ingest").code == 2  # missing PATH and options
    assert ready("show", "not-a-number").code == 2
    assert ready("log", "prove").code == 2
