"""init_home run by several processes at once (workers of one orchestrator) makes one home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from prov_core.home import open_home
from prov_core.verify import verify_home

_INIT = """
import sys
from pathlib import Path
from prov_core.home import init_home
from prov_core.step import Recorder
from prov_core.statement import Statement, Subject

home, _ = init_home(Path(sys.argv[1]))
with Recorder.from_home(home) as recorder:
    recorder.record(Statement([Subject(name=sys.argv[2], sha256="ab" * 32)], "https://x/v1", {}))
print(home.origin)
"""


def test_concurrent_init_makes_one_home(tmp_path: Path) -> None:
    path = tmp_path / "home"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _INIT, str(path), f"worker-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in results]
    origins = {out.strip() for out, _ in results}
    assert len(origins) == 1  # one config, one log
    home = open_home(path)
    assert origins == {home.origin}
    assert json.loads((path / "config.json").read_text())["origin"] == home.origin
    assert len(list(home.keys_dir.iterdir())) == 1  # one key, trusted
    assert len(home.trust().entries()) == 1
    report = verify_home(home)
    assert report.ok, report.problems
    assert report.entries == 6


def _newest(trust_path: Path, keyid: str) -> None:
    """Date a trust-store entry in the future, so it is the newest active key."""
    doc = json.loads(trust_path.read_text())
    doc["keys"][keyid]["created"] = "2999-01-01T00:00:00Z"
    trust_path.write_text(json.dumps(doc))


def test_home_signs_with_its_own_key_when_others_keys_are_trusted(tmp_path: Path) -> None:
    """A trust store holding another party's newer active key (a worker, a federated client)
    still signs, rotates and revokes with the key the home holds in keys/."""
    from prov_core.home import init_home
    from prov_core.key_events import revoke_key, rotate_key
    from prov_core.signing import Ed25519Signer
    from prov_core.statement import INGEST_V1
    from prov_core.step import Artifact, Recorder, record_step

    home, _ = init_home(tmp_path / "home")
    own = home.own_keyid()
    client = Ed25519Signer.generate()
    trust = home.trust()
    trust.add(client, predicate_types=[INGEST_V1], note_name="client-a")
    trust.save(home.trust_path)
    _newest(home.trust_path, client.keyid)
    assert home.trust().active() == client.keyid  # newest, but not held here
    fresh = open_home(home.path)
    assert fresh.own_keyid() == own
    assert fresh.signer.keyid == own
    with Recorder.from_home(fresh) as recorder:
        record_step(recorder, "s", outputs=[Artifact.from_bytes("o", b"x")])
    rotated = rotate_key(open_home(home.path))
    assert rotated["old_keyid"] == own
    assert open_home(home.path).own_keyid() == rotated["new_keyid"]
    revoked = revoke_key(open_home(home.path), client.keyid, "client left the federation")
    assert "rotated" not in revoked  # a foreign key is revoked without rotating the home's
    assert open_home(home.path).trust().get(client.keyid).status == "revoked"  # type: ignore[union-attr]
    assert verify_home(open_home(home.path)).ok
