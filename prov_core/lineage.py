"""Lineage queries: walk upstream and downstream from an artifact, and verify its chain of custody.

A *target* names where a walk starts; :meth:`Lineage.resolve` reads it
strictly::

    12                          a log index (also provgate+log://ORIGIN/12)
    blake3:HEX64 | sha256:HEX64 an artifact digest: the records that produced it
    HEX64                       either algorithm (a step output, an ingested file,
                                a subject, a snapshot manifest, an envelope)
    provgate://REPO/COMMIT      a pinned snapshot (lakefs://REPO/COMMIT for lakeFS)
    SCHEME:...                  a URI of a scheme a resolver is installed for
                                (models:/clf/1 with provgate[mlflow]): mapped to one
                                of the forms above (:mod:`prov_core.resolvers`)

:meth:`Lineage.upstream` returns everything the target was made from, back
to the ingest records and their sources; :meth:`Lineage.downstream`
everything made from it (transforms, snapshots, gate decisions, models,
answers). Both are one recursive CTE over the lineage index
(:mod:`prov_core.lineage_index`), caught up from the ledger first.

A *model* is the output of a training step: an SLSA Provenance record whose
``buildType`` is :data:`~prov_core.step.TRAINING_BUILD_TYPE` (kind
``training``). :meth:`Lineage.models` answers "which models were trained on
data from source X / under license Y / signed by key Z" in one call.

:meth:`Lineage.verify_chain` does not trust the index. From the target's
records it re-reads every record from the ledger and, numbered as in the
code:

1. the latest checkpoint: its note signature against the trust store's keys;
2. for each record: it hashes to the envelope SHA-256 its child signed;
3. its signature verifies and the trust store allows its key for its
   predicate type (untrusted and revoked keys are named);
4. its inclusion proof leads to the checkpoint's root;
5. content: the target record names the digest asked for, and a step input
   named by BLAKE3 is an output the producing record signed (or a
   single-file ingest's root; the files of a directory ingest are not in its
   record and are reported as not checkable);
6. its edges are re-derived from the record's own bytes
   (:func:`~prov_core.lineage_index.parse_record`) and followed; a step input
   that leads to no record, and a chain that reaches no ingest record, are
   broken links too.

Every problem names the record (log index) and the check; nothing stops at
the first one. The snapshot objects' bytes are not re-read here (that needs
the store: ``provgate snapshot verify`` and the gate do it).
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from prov_core.errors import (
    InputError,
    NotFoundError,
    ProvgateError,
    RevokedKeyError,
    SignatureError,
    UntrustedKeyError,
    VerificationError,
)
from prov_core.lineage_index import Edge, LineageIndex, Node, ParsedRecord, parse_record
from prov_core.resolvers import Resolver, installed_resolvers, resolve_uri, scheme_of

if TYPE_CHECKING:
    from prov_core.content_index import ContentIndex
    from prov_core.home import Home
    from prov_core.ledger.base import Ledger
    from prov_core.signing import KeyPolicy

__all__ = [
    "ChainProblem",
    "ChainReport",
    "Graph",
    "Lineage",
    "RecordCheck",
    "Target",
    "downstream",
    "models",
    "open_lineage",
    "upstream",
    "verify_chain",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_LOG_URI = re.compile(r"provgate\+log://[^/]+/(\d+)")
_STORE_OF_SCHEME = {"provgate": "local", "lakefs": "lakefs"}
_DIGEST_ROLES = ("output", "manifest", "subject", "envelope")


@dataclass(frozen=True)
class Target:
    """Target is a parsed walk start: what the user gave and the records it resolves to."""

    text: str
    form: str  # "index" | "digest" | "snapshot"
    roots: tuple[int, ...]
    digest: str | None = None
    algo: str | None = None


@dataclass(frozen=True)
class Graph:
    """Graph is the result of a walk: the roots, every node reached and the edges walked.

    An edge ``(child, parent)`` says ``child`` was made from ``parent``,
    whichever direction was walked.
    """

    target: str
    direction: str  # "up" | "down"
    roots: tuple[int, ...]
    nodes: dict[int, Node]
    edges: tuple[Edge, ...]

    def of_kind(self, *kinds: str) -> list[Node]:
        """of_kind returns the nodes of the given kinds, oldest first."""
        return [self.nodes[i] for i in sorted(self.nodes) if self.nodes[i].kind in kinds]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "direction": self.direction,
            "roots": list(self.roots),
            "nodes": [self.nodes[i].to_dict() for i in sorted(self.nodes)],
            "edges": [e.to_dict() for e in self.edges],
        }

    def to_dot(self) -> str:
        """to_dot renders the graph in Graphviz DOT (edges point from input to output)."""

        def q(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box];"]
        shapes = {
            "ingest": "cylinder",
            "snapshot": "folder",
            "training": "box3d",
            "gate": "diamond",
        }
        for i in sorted(self.nodes):
            n = self.nodes[i]
            extra = f", shape={shapes[n.kind]}" if n.kind in shapes else ""
            bold = ", penwidth=2" if i in self.roots else ""
            lines.append(f"  r{i} [label={q(f'{i} {n.kind}: {n.name}')}{extra}{bold}];")
        for e in self.edges:
            lines.append(f"  r{e.parent} -> r{e.child} [label={q(e.kind)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ChainProblem:
    """ChainProblem is one broken link: the record, the check that failed, and why."""

    log_index: int | None
    check: str  # checkpoint | link | signature | trust | inclusion | content | input | ingest
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"log_index": self.log_index, "check": self.check, "message": self.message}


@dataclass
class RecordCheck:
    """RecordCheck is what :meth:`Lineage.verify_chain` found for one record.

    ``checks`` maps each check (link, signature, trust, inclusion, content)
    to ``"ok"``, ``"failed"`` or ``"unchecked"``.
    """

    log_index: int
    kind: str = ""
    name: str = ""
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return "failed" not in self.checks.values()

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_index": self.log_index,
            "kind": self.kind,
            "name": self.name,
            "ok": self.ok,
            "checks": dict(self.checks),
        }


@dataclass
class ChainReport:
    """ChainReport is the outcome of :meth:`Lineage.verify_chain`; ``ok`` if no problem."""

    target: str
    roots: tuple[int, ...] = ()
    checkpoint_size: int | None = None
    root_hash: str | None = None
    records: dict[int, RecordCheck] = field(default_factory=dict)
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def broken(self) -> list[int]:
        """broken lists the log indices named by a problem, in order."""
        return sorted({p.log_index for p in self.problems if p.log_index is not None})

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "roots": list(self.roots),
            "checkpoint_size": self.checkpoint_size,
            "root_hash": self.root_hash,
            "broken": self.broken,
            "records": [self.records[i].to_dict() for i in sorted(self.records)],
            "problems": [p.to_dict() for p in self.problems],
        }


class Lineage:
    """Lineage answers lineage questions over one ledger, its lineage index and content index.

    ``trust`` and ``note_verifiers`` are needed only by :meth:`verify_chain`.
    Every query first catches the index up with the ledger.
    """

    def __init__(
        self,
        ledger: Ledger,
        index: LineageIndex,
        *,
        content: ContentIndex | None = None,
        trust: KeyPolicy | None = None,
        note_verifiers: Sequence[Any] = (),
        resolvers: Mapping[str, Resolver] | None = None,
    ) -> None:
        """``resolvers`` (scheme -> resolver) defaults to the installed ones (loaded on
        first use)."""
        self.ledger = ledger
        self.index = index
        self.content = content
        self.trust = trust
        self.note_verifiers = list(note_verifiers)
        self.resolvers = resolvers
        self._resolved: dict[str, str] = {}  # URI -> core target: a resolver may download

    def catch_up(self) -> int:
        """catch_up indexes the ledger entries appended since the last query."""
        if self.content is not None:
            self.content.catch_up(self.ledger)
        return self.index.catch_up(self.ledger, self.content)

    # -- resolving a target -------------------------------------------------------

    def resolve(self, target: str | int) -> Target:
        """resolve reads a target (module docstring) and finds its records.

        Raises :class:`InputError` for text that is none of the forms, and
        :class:`NotFoundError` for a well-formed target no record names. A
        URI of a scheme the core does not read goes to its resolver; the
        target keeps the URI as its text.
        """
        self.catch_up()
        if isinstance(target, int) and not isinstance(target, bool):
            return self._index_target(str(target), target)
        if not isinstance(target, str):
            raise InputError(f"lineage target {target!r} must be a string or a log index")
        text = target.strip()
        scheme = scheme_of(text)
        table = self._resolver_table() if scheme is not None else {}
        if scheme in table:
            resolved = self._resolved.get(text) or resolve_uri(text, table)
            self._resolved[text] = resolved
            try:
                found = self._resolve_text(resolved)
            except NotFoundError as exc:
                raise NotFoundError(f"{text} resolves to {resolved}: {exc}") from exc
            return replace(found, text=text)
        return self._resolve_text(text)

    def _resolver_table(self) -> Mapping[str, Resolver]:
        if self.resolvers is None:
            self.resolvers = installed_resolvers()
        return self.resolvers

    def _resolve_text(self, text: str) -> Target:
        """The target forms the core reads itself (module docstring, all but SCHEME:...)."""
        if text.isdigit() and len(text) < 64:  # 64 digits are a hex digest
            return self._index_target(text, int(text))
        log = _LOG_URI.fullmatch(text)
        if log:
            return self._index_target(text, int(log.group(1)))
        if "://" in text:
            return self._snapshot_target(text)
        algo, sep, hex_part = text.partition(":")
        if not sep:
            algo, hex_part = "", text
        hex_part = hex_part.lower()
        if algo not in ("", "blake3", "sha256") or not _HEX64.fullmatch(hex_part):
            raise InputError(
                f"{text!r} is not a lineage target: give a log index, a digest "
                "(64 hex characters, optionally prefixed blake3: or sha256:), a pinned "
                "snapshot URI provgate://REPO/COMMIT or lakefs://REPO/COMMIT, or a URI an "
                "installed resolver reads (models:/NAME/VERSION with provgate[mlflow])"
            )
        return self._digest_target(text, hex_part, algo or None)

    def _index_target(self, text: str, log_index: int) -> Target:
        size = self.ledger.size()
        if not 0 <= log_index < size:
            raise NotFoundError(
                f"log index {log_index} is out of range: the ledger has {size} entries"
            )
        return Target(text, "index", (log_index,))

    def _snapshot_target(self, text: str) -> Target:
        from prov_core.snapshots.base import SnapshotURI

        uri = SnapshotURI.parse(text)
        if not uri.pinned:
            raise InputError(
                f"{text}: {uri.ref!r} is not a commit id; lineage follows pinned snapshots "
                f"only: give {uri.scheme}://{uri.repository}/<64-hex commit id> "
                "(`provgate snapshot show` prints it)"
            )
        found = self.index.snapshot_records(_STORE_OF_SCHEME[uri.scheme], uri.repository, uri.ref)
        if not found:
            raise NotFoundError(
                f"{uri.scheme}://{uri.repository}/{uri.ref}: no snapshot record in the ledger "
                "describes this commit"
            )
        return Target(text, "snapshot", tuple(found))

    def _digest_target(self, text: str, digest: str, algo: str | None) -> Target:
        named = self.index.records_naming(digest, algo=algo)
        roots = {i for i, roles in named.items() if roles & set(_DIGEST_ROLES)}
        if self.content is not None and algo in (None, "blake3"):
            roots.update(r.log_index for r in self.content.covering([digest]).get(digest, []))
        if not roots:  # only a snapshot holds it, or only a step reads it
            roots = set(named)
        if not roots:
            what = f"{algo} digest" if algo else "digest"
            raise NotFoundError(
                f"no record in the ledger names the {what} {digest}: it was never ingested, "
                "written by a recorded step, or committed in a snapshot"
            )
        return Target(text, "digest", tuple(sorted(roots)), digest, algo)

    # -- walks -------------------------------------------------------------------

    def upstream(self, target: str | int) -> Graph:
        """upstream returns everything ``target`` was made from, back to ingest records."""
        return self._graph(self.resolve(target), down=False)

    def downstream(self, target: str | int) -> Graph:
        """downstream returns everything made from ``target`` (snapshots, models, answers)."""
        return self._graph(self.resolve(target), down=True)

    def _graph(self, target: Target, *, down: bool) -> Graph:
        nodes, edges = self.index.subgraph(target.roots, down=down)
        return Graph(target.text, "down" if down else "up", target.roots, nodes, tuple(edges))

    def downstream_of(
        self,
        *,
        source: str | None = None,
        license: str | None = None,
        keyid: str | None = None,
    ) -> Graph:
        """downstream_of walks down from every record matching all the filters given.

        ``source`` and ``license`` are GLOB patterns on ingest records
        (``https://example.org/*``, ``CC-BY-*``); ``keyid`` matches the key that
        signed a record of any kind.
        """
        self.catch_up()
        seeds = self.index.find(source=source, license=license, keyid=keyid)
        shown = ", ".join(
            f"{k}={v!r}"
            for k, v in (("source", source), ("license", license), ("keyid", keyid))
            if v is not None
        )
        nodes, edges = self.index.subgraph(seeds, down=True)
        return Graph(shown, "down", tuple(seeds), nodes, tuple(edges))

    def downstream_of_records(self, seeds: Sequence[int], label: str) -> Graph:
        """downstream_of_records walks down from the given records (e.g. those holding a sample)."""
        self.catch_up()
        nodes, edges = self.index.subgraph(list(seeds), down=True)
        return Graph(label, "down", tuple(seeds), nodes, tuple(edges))

    def models(
        self,
        *,
        source: str | None = None,
        license: str | None = None,
        keyid: str | None = None,
    ) -> list[Node]:
        """models returns the training steps downstream of the matching records (one call).

        "Which models were trained on data from source X, under license Y, or
        signed by (revoked) key Z": the outputs of these training records.
        """
        return self.downstream_of(source=source, license=license, keyid=keyid).of_kind("training")

    # -- verification ------------------------------------------------------------

    def verify_chain(self, target: str | int) -> ChainReport:
        """verify_chain re-checks every record upstream of ``target`` against the ledger."""
        from prov_core.errors import ConfigError

        if self.trust is None:
            raise ConfigError("verify_chain needs the trust store (trust=...)")
        return _ChainWalk(self, self.resolve(target), self.trust).run()


class _ChainWalk:
    """_ChainWalk is one run of verify_chain (steps numbered as in the module docstring)."""

    def __init__(self, lineage: Lineage, target: Target, trust: KeyPolicy) -> None:
        self.lineage = lineage
        self.trust = trust
        self.ledger = lineage.ledger
        self.target = target
        self.report = ChainReport(target.text, target.roots)
        self.size: int | None = None
        self.root: bytes | None = None
        self.parsed: dict[int, ParsedRecord] = {}

    def problem(self, log_index: int | None, check: str, message: str) -> None:
        self.report.problems.append(ChainProblem(log_index, check, message))
        if log_index is not None and log_index in self.report.records:
            self.report.records[log_index].checks[check] = "failed"

    def run(self) -> ChainReport:
        self._checkpoint()
        queue: deque[tuple[int, str | None, str]] = deque(
            (i, None, f"the target {self.target.text}") for i in self.target.roots
        )
        while queue:
            log_index, expected, via = queue.popleft()
            rec = self._record(log_index, expected, via)
            if rec is None:
                continue
            for ref in rec.refs:
                queue.append(
                    (ref.parent, ref.sha256, f"{_what(rec)} names as {ref.kind} {ref.label!r}")
                )
            for b3, label in rec.content_inputs:
                queue.extend(self._content_input(rec, b3, label))
        self._target_content()
        if not any(p.kind == "ingest" for p in self.parsed.values()):
            self.problem(
                self.target.roots[0] if len(self.target.roots) == 1 else None,
                "ingest",
                f"the chain of {self.target.text} reaches no ingest record",
            )
        return self.report

    def _checkpoint(self) -> None:
        """1. The latest checkpoint, verified against the trust store's note keys."""
        from prov_core.ledger.checkpoint import open_checkpoint

        note = self.ledger.latest_checkpoint()
        if note is None:
            self.problem(None, "checkpoint", "the ledger has no checkpoint to prove against")
            return
        try:
            cp = open_checkpoint(note, self.lineage.note_verifiers, origin=self.ledger.origin)
        except ProvgateError as exc:
            self.problem(None, "checkpoint", f"the latest checkpoint does not verify: {exc}")
            return
        self.size, self.root = cp.size, cp.root
        self.report.checkpoint_size, self.report.root_hash = cp.size, cp.root.hex()

    def _record(self, log_index: int, expected: str | None, via: str) -> ParsedRecord | None:
        """Steps 2-4 for one record; returns it parsed the first time it is met."""
        from prov_core.ledger.merkle import check_inclusion, leaf_hash
        from prov_core.signing import Envelope, verify_envelope

        try:
            leaf = self.ledger.entry(log_index)
        except ProvgateError as exc:
            self.problem(
                log_index, "link", f"record {log_index}, which {via}, cannot be read: {exc}"
            )
            return None
        sha = hashlib.sha256(leaf).hexdigest()
        check = self.report.records.setdefault(log_index, RecordCheck(log_index))
        # 2. The record is the one its child signed for.
        if expected is not None and sha != expected:
            self.problem(
                log_index,
                "link",
                f"record {log_index} is not the record {via}: its envelope sha256 is {sha}, "
                f"the signed reference is {expected}",
            )
        elif expected is not None and check.checks.get("link") != "failed":
            check.checks["link"] = "ok"
        else:
            check.checks.setdefault("link", "unchecked")
        if log_index in self.parsed:
            return None
        rec = parse_record(log_index, leaf)
        self.parsed[log_index] = rec
        check.kind, check.name = rec.kind, rec.name
        # 3. Signature and trust decision.
        try:
            envelope = Envelope.parse(leaf)
            verify_envelope(envelope, self.trust, predicate_type=rec.predicate_type)
            check.checks["signature"] = check.checks["trust"] = "ok"
        except (RevokedKeyError, UntrustedKeyError) as exc:
            check.checks["signature"] = "unchecked"
            self.problem(log_index, "trust", f"{_what(rec)}: {exc}")
        except SignatureError as exc:
            check.checks["trust"] = "ok"
            self.problem(log_index, "signature", f"{_what(rec)}: {exc}")
        except (VerificationError, ProvgateError) as exc:
            self.problem(log_index, "signature", f"{_what(rec)}: {exc}")
        if rec.kind == "malformed":
            self.problem(log_index, "content", f"record {log_index} is not an in-toto statement")
        # 4. Inclusion in the checkpointed tree.
        if self.size is None or self.root is None:
            check.checks["inclusion"] = "unchecked"
        elif log_index >= self.size:
            self.problem(
                log_index,
                "inclusion",
                f"{_what(rec)} is not yet in the latest checkpoint (tree size {self.size})",
            )
        else:
            try:
                proof = self.ledger.prove_inclusion(log_index, self.size)
                check_inclusion(log_index, self.size, leaf_hash(leaf), proof, self.root)
                check.checks["inclusion"] = "ok"
            except ProvgateError as exc:
                self.problem(
                    log_index,
                    "inclusion",
                    f"{_what(rec)}: no inclusion in the checkpoint of size {self.size}: {exc}",
                )
        return rec

    def _content_input(self, rec: ParsedRecord, b3: str, label: str) -> list[tuple[int, None, str]]:
        """5./6. A step input named by BLAKE3: the earlier records that signed those bytes."""
        candidates = set(self.lineage.index.records_naming(b3, algo="blake3"))
        if self.lineage.content is not None:
            candidates.update(r.log_index for r in self.lineage.content.covering([b3]).get(b3, []))
        found: list[tuple[int, None, str]] = []
        for i in sorted(c for c in candidates if c < rec.log_index):
            try:
                producer = parse_record(i, self.ledger.entry(i))
            except ProvgateError:
                continue
            claim = (b3, "output", "blake3") in producer.digests
            if claim:  # the producer's own record signs these bytes as its output
                check = self.report.records.setdefault(i, RecordCheck(i))
                if check.checks.get("link") != "failed":
                    check.checks["link"] = "ok"
            elif producer.kind == "ingest":
                claim = self._covered_by_content_index(i, b3)
            if claim:
                found.append((i, None, f"{_what(rec)} reads as input {label!r} (BLAKE3 {b3})"))
        if not found:
            self.problem(
                rec.log_index,
                "input",
                f"{_what(rec)}: input {label!r} (BLAKE3 {b3}) was produced by no earlier "
                "record: it leads nowhere",
            )
        return found

    def _covered_by_content_index(self, log_index: int, b3: str) -> bool:
        """A directory ingest's files are not in its record: the content index's word is taken
        (noted as ``unchecked`` content on that record)."""
        content = self.lineage.content
        if content is None:
            return False
        refs = content.covering([b3]).get(b3, [])
        if any(r.log_index == log_index for r in refs):
            check = self.report.records.setdefault(log_index, RecordCheck(log_index))
            check.checks.setdefault("content", "unchecked")
            return True
        return False

    def _target_content(self) -> None:
        """5. The records a digest target resolved to must name that digest themselves."""
        t = self.target
        if t.form != "digest" or t.digest is None:
            return
        for i in t.roots:
            rec = self.parsed.get(i)
            if rec is None:
                continue
            named = any(d == t.digest and (t.algo in (None, a)) for d, _, a in rec.digests)
            check = self.report.records[i]
            if named:
                check.checks["content"] = "ok"
            elif rec.kind == "ingest" and self._covered_by_content_index(i, t.digest):
                pass
            else:
                self.problem(
                    i,
                    "content",
                    f"{_what(rec)} does not name the digest {t.digest} it was found by",
                )


def _what(rec: ParsedRecord) -> str:
    return f"{rec.kind} record {rec.log_index} ({rec.name})"


# --------------------------------------------------------------------------
# One-call helpers on a home


@contextmanager
def open_lineage(
    home: Home, *, resolvers: Mapping[str, Resolver] | None = None
) -> Iterator[Lineage]:
    """open_lineage opens a home's ledger, lineage index, content index and trust store;
    ``resolvers`` as for :class:`Lineage` (default: the installed ones)."""
    with (
        home.open_ledger() as ledger,
        home.open_lineage_index() as index,
        home.open_index() as content,
    ):
        yield Lineage(
            ledger,
            index,
            content=content,
            trust=home.trust(),
            note_verifiers=home.note_verifiers(),
            resolvers=resolvers,
        )


def upstream(target: str | int, *, home: Home) -> Graph:
    """upstream walks up from ``target`` in ``home`` (see :meth:`Lineage.upstream`)."""
    with open_lineage(home) as lineage:
        return lineage.upstream(target)


def downstream(target: str | int, *, home: Home) -> Graph:
    """downstream walks down from ``target`` in ``home`` (see :meth:`Lineage.downstream`)."""
    with open_lineage(home) as lineage:
        return lineage.downstream(target)


def verify_chain(target: str | int, *, home: Home) -> ChainReport:
    """verify_chain checks the chain of custody of ``target`` (see :meth:`Lineage.verify_chain`)."""
    with open_lineage(home) as lineage:
        return lineage.verify_chain(target)


def models(
    *,
    home: Home,
    source: str | None = None,
    license: str | None = None,
    keyid: str | None = None,
) -> list[Node]:
    """models lists the training records downstream of the matching records (one call)."""
    with open_lineage(home) as lineage:
        return lineage.models(source=source, license=license, keyid=keyid)
