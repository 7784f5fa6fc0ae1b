"""``provgate log serve``: the sequencer of a PostgreSQL home, run as a process of its own.

The command is run as a whole process (``python -m prov_core.cli``), with a
timeout: a sequencer that should have refused to start would otherwise serve
forever.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from prov_core.home import open_home
from prov_core.ledger.sequencer import SequencedLedger

from .conftest import REPO, Cli


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (the kernel's pick; free when returned)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(home: Path, listen: str) -> list[str]:
    return [sys.executable, "-m", "prov_core.cli", "--home", str(home), "log", "serve",
            "--listen", listen]  # fmt: skip


def serve_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def refused(home: Path, listen: str) -> subprocess.CompletedProcess[str]:
    """Run ``log serve``, which must exit by itself."""
    return subprocess.run(
        serve_command(home, listen),
        cwd=REPO,
        env=serve_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def postgres_home(cli: Cli, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("PROVGATE_LEDGER_URL", postgres_url)
    monkeypatch.delenv("PROVGATE_LEDGER_SEQUENCER", raising=False)
    assert cli("init").code == 0
    return cli


def test_serve_refuses_a_sqlite_home(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVGATE_LEDGER_URL", raising=False)
    assert cli("init").code == 0
    done = refused(cli.home, f"127.0.0.1:{free_port()}")
    assert done.returncode == 2, done.stderr
    assert "PROVGATE_LEDGER_URL" in done.stderr
    assert "PostgreSQL" in done.stderr
    assert "listening" not in done.stderr


@pytest.mark.parametrize("listen", ["127.0.0.1:http", "127.0.0.1:70000", ":7465", "127.0.0.1:"])
def test_serve_refuses_a_bad_listen_address(postgres_home: Cli, listen: str) -> None:
    done = refused(postgres_home.home, listen)
    assert done.returncode == 2, done.stderr
    assert "host:port" in done.stderr
    assert repr(listen) in done.stderr  # names what it was given
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_port_in_use(postgres_home: Cli) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        done = refused(postgres_home.home, listen)
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on {listen}" in done.stderr
    assert "Traceback" not in done.stderr


class Served:
    """``provgate log serve`` running in the background; its stderr read line by line."""

    def __init__(self, home: Path, listen: str) -> None:
        self.proc = subprocess.Popen(
            serve_command(home, listen),
            cwd=REPO,
            env=serve_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self) -> str:
        try:
            line = self.lines.get(timeout=60)
        except queue.Empty:
            pytest.fail("provgate log serve printed nothing in 60 s")
        assert line is not None, f"provgate log serve exited ({self.proc.wait(30)})"
        return line

    def rest(self) -> list[str]:
        """Every line printed until it exited."""
        lines = []
        while (line := self.lines.get(timeout=60)) is not None:
            lines.append(line)
        return lines

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self.reader.join(30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_takes_the_homes_appends_and_stops_on_a_signal(
    postgres_home: Cli, data: Path, monkeypatch: pytest.MonkeyPatch, stop: signal.Signals
) -> None:
    cli = postgres_home
    listen = f"127.0.0.1:{free_port()}"
    # The same environment as the workers': the sequencer itself does not go through itself.
    monkeypatch.setenv("PROVGATE_LEDGER_SEQUENCER", listen)
    served = Served(cli.home, listen)
    try:
        started = served.line()
        assert f"listening on {listen}" in started, started
        got = cli("ingest", str(data / "reviews.csv"), "--source", "https://example.org/r",
                  "--license", "CC0-1.0", "--json")  # fmt: skip
        assert got.code == 0, got.err
        with open_home(cli.home).open_ledger() as ledger:
            assert isinstance(ledger, SequencedLedger)
            assert ledger.sequencer == listen
            done = [ledger.append([b"entry %d" % i]) for i in range(3)]
            assert [d.first_index for d in done] == [1, 2, 3]
            assert ledger.fallbacks == 0
            assert ledger.size() == 4
        served.proc.send_signal(stop)
        assert served.proc.wait(60) == 0
        rest = served.rest()
    finally:
        served.close()
    assert "sequencer stopped: 4 append(s) in 4 batch(es)" in rest, rest
    assert not [line for line in rest if "Traceback" in line], rest
