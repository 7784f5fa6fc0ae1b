"""A process of the concurrent catch-up test (importable by multiprocessing's spawn).

:func:`catch_up_until` catches the home's content index and lineage index up,
over and over, in small batches, until the test says the appends are done;
then once more. It returns how many entries its own catch-ups indexed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def catch_up_until(home: str, url: str | None, batch: int, ready: str, stop: str) -> list[int]:
    """catch_up_until returns ``[entries the content index read, entries the lineage index read]``.

    ``url`` is the home's PostgreSQL URL (None: its SQLite files); ``batch`` the
    entries per catch-up transaction; ``ready`` a file it creates once its
    indexes are open; ``stop`` the file whose existence ends the loop.
    """
    if url is None:
        os.environ.pop("PROVGATE_LEDGER_URL", None)
    else:
        os.environ["PROVGATE_LEDGER_URL"] = url
    from prov_core import content_index, lineage_index
    from prov_core.home import open_home

    content_index.BATCH = batch  # many small transactions: many chances to interleave
    lineage_index.BATCH = batch
    opened = open_home(Path(home))
    done = [0, 0]
    with (
        opened.open_ledger() as ledger,
        opened.open_index() as content,
        opened.open_lineage_index() as lineage,
    ):
        Path(ready).touch()
        while True:
            last = Path(stop).exists()  # read before the pass: the final pass sees every append
            done[0] += content.catch_up(ledger)
            done[1] += lineage.catch_up(ledger, content)
            if last:
                return done
            time.sleep(0.002)
