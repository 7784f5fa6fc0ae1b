"""The tests' reader of W&B transaction logs (``_txlog``) refuses a log W&B has not
finished writing, rather than reading it as a short one."""

from __future__ import annotations

from pathlib import Path

import pytest
from _txlog import HEADER, read_finished, read_records


def test_a_log_without_the_runs_exit_record_is_refused(tmp_path: Path) -> None:
    # What a run's log holds between wandb.finish() and wandb-core closing it.
    log = tmp_path / "run-x.wandb"
    log.write_bytes(HEADER)
    assert read_records(log) == []
    with pytest.raises(AssertionError, match=r"run-x\.wandb is not complete: no exit record"):
        read_finished(log)
