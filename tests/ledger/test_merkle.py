"""RFC 9162 Merkle tree: reference vectors, the RFC's own definitions, properties."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prov_core.errors import InputError, ProofError
from prov_core.ledger import merkle
from prov_core.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    check_consistency,
    check_inclusion,
    leaf_hash,
    new_subtrees,
    root_of,
)

from .conftest import require_services, vendor_testdata

# --- (a) transparency-dev/merkle reference vectors -------------------------

VECTORS = vendor_testdata()
VECTOR_FILES = sorted(VECTORS.rglob("*.json")) if VECTORS else []
EXPECTED_VECTORS = 196


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _run_vector(path: Path) -> None:
    case: dict[str, Any] = json.loads(path.read_text())
    proof = [_b64(p) for p in case["proof"] or []]
    failed: ProofError | None = None
    try:
        if "leafIdx" in case:
            check_inclusion(
                case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof, _b64(case["root"])
            )
        else:
            check_consistency(
                case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), proof
            )
    except ProofError as exc:
        failed = exc
    if case["wantErr"]:
        assert failed is not None, f"{path}: {case['desc']}: verified but must fail"
    else:
        assert failed is None, f"{path}: {case['desc']}: unexpected {failed}"


def _missing_vectors() -> None:
    reason = (
        "transparency-dev/merkle testdata not found (set PROVGATE_VENDOR_DIR to the vendor dir)"
    )
    if require_services():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.mark.parametrize(
    "path",
    VECTOR_FILES or [None],
    ids=[str(p.relative_to(VECTORS)) for p in VECTOR_FILES] if VECTORS else ["missing"],
)
def test_reference_vector(path: Path | None) -> None:
    if path is None:
        _missing_vectors()
        return
    _run_vector(path)


def test_reference_vector_count() -> None:
    if VECTORS is None:
        _missing_vectors()
        return
    ran = 0
    for path in VECTOR_FILES:
        _run_vector(path)
        ran += 1
    assert ran == EXPECTED_VECTORS
    kinds = {"inclusion": 0, "consistency": 0}
    for path in VECTOR_FILES:
        kinds[path.relative_to(VECTORS).parts[0]] += 1
    assert kinds == {"inclusion": 98, "consistency": 98}


# --- (b) the RFC 9162 definitions, written out literally --------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_of(n: int) -> int:
    """The largest power of two smaller than n (RFC 9162 §2.1.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def MTH(D: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1."""
    n = len(D)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + D[0])
    k = k_of(n)
    return sha256(b"\x01" + MTH(D[0:k]) + MTH(D[k:n]))


def PATH(m: int, D: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1."""
    n = len(D)
    if n == 1:
        return []
    k = k_of(n)
    if m < k:
        return [*PATH(m, D[0:k]), MTH(D[k:n])]
    return [*PATH(m - k, D[k:n]), MTH(D[0:k])]


def SUBPROOF(m: int, D: list[bytes], b: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1."""
    n = len(D)
    if m == n:
        return [] if b else [MTH(D)]
    k = k_of(n)
    if m <= k:
        return [*SUBPROOF(m, D[0:k], b), MTH(D[k:n])]
    return [*SUBPROOF(m - k, D[k:n], False), MTH(D[0:k])]


def PROOF(m: int, D: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.4.1."""
    return SUBPROOF(m, D, True)


DATA = [b"leaf %d" % i for i in range(70)]
TREE = MemoryTree.from_data(DATA)


def test_hash_prefixes() -> None:
    assert sha256(b"") == EMPTY_ROOT
    assert leaf_hash(b"x") == sha256(b"\x00x")
    assert merkle.node_hash(b"a", b"b") == sha256(b"\x01ab")


@pytest.mark.parametrize("n", range(34))
def test_roots_match_mth(n: int) -> None:
    want = MTH(DATA[:n])
    assert TREE.root(n) == want
    assert root_of([leaf_hash(d) for d in DATA[:n]]) == want
    frontier = Frontier()
    for d in DATA[:n]:
        frontier.append(leaf_hash(d))
    assert frontier.root() == want
    assert Frontier.from_reader(n, TREE).root() == want


@pytest.mark.parametrize("n", range(1, 34))
def test_proofs_match_rfc(n: int) -> None:
    for m in range(n):
        assert TREE.prove_inclusion(m, n) == PATH(m, DATA[:n])
    for m in range(1, n + 1):
        assert TREE.prove_consistency(m, n) == PROOF(m, DATA[:n])


def test_new_subtrees_are_the_complete_subtrees() -> None:
    tree = MemoryTree()
    for i, d in enumerate(DATA[:40]):
        h = leaf_hash(d)
        created = new_subtrees(i, h, tree)
        tree.append(h)
        assert created[0] == (0, i, h)
        for level, n, value in created:
            assert (n + 1) << level == i + 1  # completed by leaf i
            assert value == MTH(DATA[n << level : (n + 1) << level])
        assert len(created) == 1 + (i + 1 ^ i).bit_length() - 1


def test_bad_proof_arguments() -> None:
    with pytest.raises(InputError):
        TREE.prove_inclusion(5, 5)
    with pytest.raises(InputError):
        TREE.prove_consistency(0, 5)
    with pytest.raises(InputError):
        TREE.prove_consistency(6, 5)
    with pytest.raises(InputError):
        TREE.root(len(DATA) + 1)
    with pytest.raises(ProofError, match=r"^invalid arguments"):
        check_inclusion(5, 5, leaf_hash(DATA[0]), [], TREE.root(5))
    with pytest.raises(ProofError, match=r"^invalid arguments"):
        check_consistency(6, 5, TREE.root(6), TREE.root(5), [])
    with pytest.raises(ProofError, match=r"^invalid arguments"):
        check_consistency(0, 5, EMPTY_ROOT, TREE.root(5), [])
    with pytest.raises(InputError):
        MemoryTree([b"short"])


# --- (c) properties ---------------------------------------------------------

N_EXHAUSTIVE = 64
SMALL = MemoryTree.from_data(DATA[:N_EXHAUSTIVE])
ROOTS = [SMALL.root(n) for n in range(N_EXHAUSTIVE + 1)]


def _flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


@pytest.mark.parametrize("n", range(1, N_EXHAUSTIVE + 1))
def test_all_inclusion_proofs(n: int) -> None:
    for i in range(n):
        proof = SMALL.prove_inclusion(i, n)
        lh = SMALL.leaf_hash(i)
        check_inclusion(i, n, lh, proof, ROOTS[n])
        with pytest.raises(ProofError):
            check_inclusion(i, n, _flip(lh), proof, ROOTS[n])
        with pytest.raises(ProofError):
            check_inclusion(i, n, lh, proof, _flip(ROOTS[n]))
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = _flip(bad[j])
            with pytest.raises(ProofError):
                check_inclusion(i, n, lh, bad, ROOTS[n])
        if proof:
            with pytest.raises(ProofError):
                check_inclusion(i, n, lh, proof[:-1], ROOTS[n])
        with pytest.raises(ProofError):
            check_inclusion(i, n, lh, [*proof, ROOTS[n]], ROOTS[n])
        if n > 1:
            with pytest.raises(ProofError):
                check_inclusion((i + 1) % n, n, lh, proof, ROOTS[n])


@pytest.mark.parametrize("n", range(1, N_EXHAUSTIVE + 1))
def test_all_consistency_proofs(n: int) -> None:
    for m in range(1, n + 1):
        proof = SMALL.prove_consistency(m, n)
        check_consistency(m, n, ROOTS[m], ROOTS[n], proof)
        with pytest.raises(ProofError):
            check_consistency(m, n, _flip(ROOTS[m]), ROOTS[n], proof)
        with pytest.raises(ProofError):
            check_consistency(m, n, ROOTS[m], _flip(ROOTS[n]), proof)
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = _flip(bad[j], 3)
            with pytest.raises(ProofError):
                check_consistency(m, n, ROOTS[m], ROOTS[n], bad)
        if m < n:
            with pytest.raises(ProofError):
                check_consistency(m, n, ROOTS[m], ROOTS[n], proof[:-1])
            if m > 1:
                with pytest.raises(ProofError):
                    check_consistency(m - 1, n, ROOTS[m - 1], ROOTS[n], proof)


BIG_N = 3000
BIG = MemoryTree([leaf_hash(i.to_bytes(4, "big")) for i in range(BIG_N)])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_large_inclusion(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, BIG_N))
    i = data.draw(st.integers(0, n - 1))
    proof = BIG.prove_inclusion(i, n)
    root = BIG.root(n)
    check_inclusion(i, n, BIG.leaf_hash(i), proof, root)
    # (A different size with the same root may still verify: the root, not the
    # size, is what a checkpoint's signature binds, so size is not tampered.)
    tamper = data.draw(st.sampled_from(["leaf", "root", "proof", "index"]))
    lh, idx = BIG.leaf_hash(i), i
    if tamper == "leaf":
        lh = _flip(lh, data.draw(st.integers(0, 7)))
    elif tamper == "root":
        root = _flip(root, data.draw(st.integers(0, 7)))
    elif tamper == "proof":
        if not proof:
            return
        j = data.draw(st.integers(0, len(proof) - 1))
        proof[j] = _flip(proof[j], data.draw(st.integers(0, 7)))
    elif tamper == "index":
        if n == 1:
            return
        idx = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
    with pytest.raises(ProofError):
        check_inclusion(idx, n, lh, proof, root)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_large_consistency(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, BIG_N))
    m = data.draw(st.integers(1, n - 1))
    proof = BIG.prove_consistency(m, n)
    old, new = BIG.root(m), BIG.root(n)
    check_consistency(m, n, old, new, proof)
    tamper = data.draw(st.sampled_from(["old", "new", "proof", "size"]))
    if tamper == "old":
        old = _flip(old)
    elif tamper == "new":
        new = _flip(new)
    elif tamper == "proof":
        j = data.draw(st.integers(0, len(proof) - 1))
        proof[j] = _flip(proof[j], data.draw(st.integers(0, 7)))
    else:
        m2 = data.draw(st.integers(1, n - 1).filter(lambda x: x != m))
        with pytest.raises(ProofError):
            check_consistency(m2, n, BIG.root(m2), new, proof)
        return
    with pytest.raises(ProofError):
        check_consistency(m, n, old, new, proof)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=300), st.integers(1, 50))
def test_batched_extend_equals_appends(leaves: list[bytes], step: int) -> None:
    hashes = [leaf_hash(x) for x in leaves]
    one = MemoryTree()
    for h in hashes:
        one.append(h)
    batched = MemoryTree()
    for k in range(0, len(hashes), step):
        batched.extend(hashes[k : k + step])
    frontier = Frontier()
    for h in hashes:
        frontier.append(h)
    assert one.root() == batched.root() == root_of(hashes) == frontier.root() == MTH(leaves)
    assert one.size == batched.size == len(leaves)
