"""The contract every Ledger backend passes.

Subclass :class:`LedgerContract` in a test module and provide a fixture
``ledger_factory``: a callable that opens (or, called again, reopens) the
one ledger of the test, with origin ``ORIGIN`` and the ``signer`` fixture's
key. Set ``persistent = False`` for a backend that keeps nothing after
``close()``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from prov_core.errors import InputError, LedgerError, LedgerIntegrityError
from prov_core.ledger import (
    Ledger,
    NoteSigner,
    NoteVerifier,
    audit_log,
    open_checkpoint,
    verify_receipt,
)
from prov_core.ledger.base import BaseLedger
from prov_core.ledger.merkle import (
    MemoryTree,
    check_consistency,
    check_inclusion,
    leaf_hash,
)

from .conftest import ORIGIN

Factory = Callable[[], BaseLedger]
BATCHES = [1, 3, 1, 8, 2, 1, 5]  # sizes 1, 4, 5, 13, 15, 16, 21


def fill(ledger: BaseLedger, batches: list[int] = BATCHES) -> list[bytes]:
    leaves: list[bytes] = []
    for n in batches:
        batch = [
            b'{"envelope": %d}' % (len(leaves) + i) + b"x" * (len(leaves) % 7) for i in range(n)
        ]
        ledger.append(batch)
        leaves += batch
    return leaves


class FailingSigner(NoteSigner):
    """FailingSigner fails to sign once, in the middle of an append."""

    fail = False

    def sign_note(self, text: bytes) -> bytes:
        if self.fail:
            self.fail = False
            raise RuntimeError("signing service down")
        return super().sign_note(text)


class LedgerContract:
    persistent = True

    def test_is_a_ledger(self, ledger_factory: Factory) -> None:
        with ledger_factory() as ledger:
            assert isinstance(ledger, Ledger)
            assert ledger.kind
            assert ledger.origin == ORIGIN

    def test_empty(self, ledger_factory: Factory) -> None:
        with ledger_factory() as ledger:
            assert ledger.size() == 0
            assert ledger.latest_checkpoint() is None
            assert list(ledger.checkpoints()) == []
            assert list(ledger.entries()) == []
            with pytest.raises(InputError):
                ledger.entry(0)
            with pytest.raises(InputError):
                ledger.prove_inclusion(0)
            with pytest.raises(InputError):
                ledger.receipt(0)

    def test_indices_are_consecutive(self, ledger_factory: Factory) -> None:
        with ledger_factory() as ledger:
            size = 0
            for n in BATCHES:
                got = ledger.append([b"e%d" % (size + i) for i in range(n)])
                # One writer: the checkpoint it lands under is the one its own append made.
                assert (got.first_index, got.count, got.size) == (size, n, size + n)
                assert list(got.indices) == list(range(size, size + n))
                size += n
            assert ledger.size() == size
            assert [i for i, _ in ledger.entries()] == list(range(size))
            assert [d for _, d in ledger.entries()] == [b"e%d" % i for i in range(size)]
            assert ledger.entry(7) == b"e7"
            assert list(ledger.entries(3, 6)) == [(3, b"e3"), (4, b"e4"), (5, b"e5")]
            with pytest.raises(InputError, match="no entry"):
                ledger.entry(size)
            with pytest.raises(InputError):
                ledger.entry(-1)

    def test_bad_batches_change_nothing(self, ledger_factory: Factory) -> None:
        with ledger_factory() as ledger:
            ledger.append([b"a"])
            for bad in ([], [b"b", "c", b"d"], b"raw bytes", [b"b", None]):
                with pytest.raises(InputError):
                    ledger.append(bad)  # type: ignore[arg-type]
            assert ledger.size() == 1
            assert list(ledger.entries()) == [(0, b"a")]
            assert [s for s, _ in ledger.checkpoints()] == [1]

    def test_every_append_leaves_a_checkpoint(
        self, ledger_factory: Factory, verifier: NoteVerifier
    ) -> None:
        with ledger_factory() as ledger:
            leaves: list[bytes] = []
            sizes = []
            for n in BATCHES:
                batch = [b"leaf %d" % (len(leaves) + i) for i in range(n)]
                got = ledger.append(batch)
                leaves += batch
                sizes.append(len(leaves))
                assert ledger.latest_checkpoint() == got.checkpoint_note
                cp = open_checkpoint(got.checkpoint_note, [verifier], origin=ORIGIN)
                assert cp.size == len(leaves)
                assert cp.root == MemoryTree.from_data(leaves).root()
            assert [s for s, _ in ledger.checkpoints()] == sizes
            for size, note in ledger.checkpoints():
                assert ledger.checkpoint(size) == note
            with pytest.raises(InputError):
                ledger.checkpoint(2)

    def test_all_proofs_verify(self, ledger_factory: Factory, verifier: NoteVerifier) -> None:
        with ledger_factory() as ledger:
            leaves = fill(ledger)
            heads = {
                s: open_checkpoint(n, [verifier], origin=ORIGIN) for s, n in ledger.checkpoints()
            }
            for size, cp in heads.items():
                for i in range(size):
                    check_inclusion(
                        i, size, leaf_hash(leaves[i]), ledger.prove_inclusion(i, size), cp.root
                    )
                    got = verify_receipt(ledger.receipt(i, size), leaves[i], [verifier])
                    assert got == cp
            for old, a in heads.items():
                for new, b in heads.items():
                    if old <= new:
                        check_consistency(
                            old, new, a.root, b.root, ledger.prove_consistency(old, new)
                        )
            last = max(heads)
            assert ledger.prove_inclusion(3) == ledger.prove_inclusion(3, last)
            with pytest.raises(InputError):
                ledger.prove_inclusion(0, last + 1)
            with pytest.raises(InputError):
                ledger.prove_consistency(0, last)
            with pytest.raises(InputError):
                ledger.receipt(2, 2)  # no checkpoint at size 2
            with pytest.raises(LedgerIntegrityError):
                ledger.read_subtrees([(0, last)])

    def test_failed_append_is_rolled_back(
        self, ledger_factory: Factory, signer: NoteSigner, verifier: NoteVerifier
    ) -> None:
        with ledger_factory() as ledger:
            failing = FailingSigner(signer.name, signer._key)
            ledger.note_signer = failing
            ledger.append([b"a", b"b", b"c"])
            failing.fail = True
            with pytest.raises(RuntimeError):
                ledger.append([b"d", b"e"])
            assert ledger.size() == 3
            assert [d for _, d in ledger.entries()] == [b"a", b"b", b"c"]
            ledger.append([b"f"])
            assert [d for _, d in ledger.entries()] == [b"a", b"b", b"c", b"f"]
            assert audit_log(ledger, [verifier]).ok

    def test_reserve_yields_the_index_of_the_next_append(
        self, ledger_factory: Factory, verifier: NoteVerifier
    ) -> None:
        with ledger_factory() as ledger:
            ledger.append([b"a", b"b"])
            with ledger.reserve() as index:
                assert index == 2
                assert ledger.size() == 2  # readable inside, from the same thread
                got = ledger.append([b"named " + str(index).encode()])
            assert got.first_index == index
            assert ledger.entry(2) == b"named 2"
            assert audit_log(ledger, [verifier]).ok

    def test_reserve_without_append_takes_nothing(
        self, ledger_factory: Factory, verifier: NoteVerifier
    ) -> None:
        with ledger_factory() as ledger:
            ledger.append([b"a"])

            def store_commit_fails() -> None:
                with ledger.reserve() as index:
                    assert index == 1
                    raise RuntimeError("the store commit failed")

            with pytest.raises(RuntimeError):
                store_commit_fails()
            with ledger.reserve() as again:
                assert again == 1
            assert ledger.append([b"b"]).first_index == 1  # no gap
            assert [s for s, _ in ledger.checkpoints()] == [1, 2]
            assert audit_log(ledger, [verifier]).ok

    def test_reserve_then_failed_append_releases(
        self, ledger_factory: Factory, signer: NoteSigner, verifier: NoteVerifier
    ) -> None:
        with ledger_factory() as ledger:
            failing = FailingSigner(signer.name, signer._key)
            ledger.note_signer = failing
            failing.fail = True

            def append_fails() -> None:
                with ledger.reserve() as index:
                    assert index == 0
                    ledger.append([b"x"])

            with pytest.raises(RuntimeError):
                append_fails()
            assert ledger.size() == 0
            assert ledger.append([b"y"]).first_index == 0
            assert audit_log(ledger, [verifier]).ok

    def test_audit_clean(self, ledger_factory: Factory, verifier: NoteVerifier) -> None:
        with ledger_factory() as ledger:
            fill(ledger)
            report = audit_log(ledger, [verifier])
            assert report.problems == []
            assert (report.entries, report.verified_size, report.checkpoints) == (21, 21, 7)

    def test_reopen(self, ledger_factory: Factory, verifier: NoteVerifier) -> None:
        if not self.persistent:
            pytest.skip("this backend keeps nothing after close()")
        ledger = ledger_factory()
        leaves = fill(ledger)
        notes = list(ledger.checkpoints())
        ledger.close()
        with pytest.raises(LedgerError):
            ledger.size()
        with ledger_factory() as again:
            assert again.size() == len(leaves)
            assert list(again.checkpoints()) == notes
            assert [d for _, d in again.entries()] == leaves
            got = again.append([b"after reopen"])
            assert got.first_index == len(leaves)
            assert audit_log(again, [verifier]).ok

    def test_closed(self, ledger_factory: Factory) -> None:
        ledger = ledger_factory()
        ledger.close()
        with pytest.raises(LedgerError):
            ledger.append([b"x"])
        with pytest.raises(LedgerError):
            ledger.latest_checkpoint()
