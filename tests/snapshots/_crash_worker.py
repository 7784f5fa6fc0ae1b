"""Writer processes of the local store's crash and concurrency tests.

``python -m tests.snapshots._crash_worker ROOT REPO BRANCH TAG BIG`` writes and
commits in a loop until killed, printing one JSON line per event on stdout:
``{"event": "committing", "n": N}`` just before each ``commit`` call and
``{"event": "committed", "id": ID, "files": {PATH: BLAKE3}}`` after it. The
parent kills it with SIGKILL at random points, mostly just after a
"committing" line, i.e. inside ``commit``.

:func:`commit_many` (importable by ``multiprocessing``'s spawn) is the writer
of the concurrency tests.
"""

from __future__ import annotations

import json
import os
import sys

import blake3

from prov_core.errors import InputError
from prov_core.snapshots.local import LocalStore


def _emit(event: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def commit_loop(root: str, repo: str, branch: str, tag: str, big: int) -> None:
    """commit_loop commits a large file and a few small ones per commit, forever."""
    store = LocalStore(root, committer=f"crash-{tag}")
    n = 0
    while True:
        files = {f"{tag}/c{n}/big.bin": os.urandom(big)}
        for k in range(3):
            files[f"{tag}/c{n}/small-{k}.txt"] = b"%s %d %d\n" % (tag.encode(), n, k)
        for path, data in files.items():
            store.write(repo, branch, path, data, {"n": str(n)})
        _emit({"event": "committing", "n": n})
        commit = store.commit(repo, branch, f"{tag} commit {n}")
        digests = {p: blake3.blake3(d).hexdigest() for p, d in files.items()}
        _emit({"event": "committed", "id": commit.id, "files": digests})
        n += 1


def commit_many(
    root: str, repo: str, branch: str, worker: int, count: int, database: str | None = None
) -> list[tuple[str | None, dict[str, str]]]:
    """commit_many writes then commits ``count`` times; returns (commit id or None, files).

    ``database``: the store's metadata in PostgreSQL (blobs under ``root`` still).

    On a shared branch another writer's commit may already have taken this
    writer's staged file (lakeFS semantics): that commit is then refused
    with "no changes" and recorded as None.
    """
    out: list[tuple[str | None, dict[str, str]]] = []
    with LocalStore(root, committer=f"worker-{worker}", database=database) as store:
        for i in range(count):
            data = b"worker %d file %d\n" % (worker, i) * (1 + i)
            path = f"w{worker}/{i:03d}.txt"
            store.write(repo, branch, path, data)
            files = {path: blake3.blake3(data).hexdigest()}
            try:
                commit_id: str | None = store.commit(repo, branch, f"w{worker} #{i}").id
            except InputError as exc:
                if "no changes" not in str(exc):
                    raise
                commit_id = None
            out.append((commit_id, files))
    return out


if __name__ == "__main__":
    root_arg, repo_arg, branch_arg, tag_arg, big_arg = sys.argv[1:6]
    commit_loop(root_arg, repo_arg, branch_arg, tag_arg, int(big_arg))
