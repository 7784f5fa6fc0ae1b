"""The ``provgate`` command.

The contract users script against (see README): every ``--json`` output is one
JSON document on stdout, human output goes to stderr or the terminal, and the
exit codes are 0 success, 1 verification failed or refused, 2 usage or input
error. ``provgate digest`` takes a lean path that imports neither typer nor
rich, so its start-up stays close to ``b3sum``'s.
"""

from __future__ import annotations

import sys
from pathlib import Path  # typer resolves command annotations from module globals
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, NoReturn

    import typer

# Only ``sys`` at module level: ``provgate digest`` is timed as a whole process
# against b3sum, so every other import happens where it is needed.

__all__ = ["main"]


def _emit_json(doc: Any) -> None:
    import json

    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")


def _fail(exc: BaseException) -> NoReturn:
    from prov_core.errors import ProvgateError

    code = exc.exit_code if isinstance(exc, ProvgateError) else 2
    sys.stderr.write(f"provgate: error: {exc}\n")
    raise SystemExit(code)


# --- provgate digest: the lean path -------------------------------------------


_DIGEST_USAGE = """usage: provgate digest [--json] PATH...

Print the BLAKE3 digest of files or directories as b3sum does (HEX  PATH);
record nothing. --json prints {"blake3", "sha256_subject", "files", "bytes"}.
"""


def _digest_main(argv: list[str]) -> int:
    """``provgate digest PATH... [--json]`` without importing typer, rich or argparse."""
    from prov_core.errors import InputError, ProvgateError

    if "-h" in argv or "--help" in argv:
        sys.stdout.write(_DIGEST_USAGE)
        return 0
    as_json = "--json" in argv
    paths = [a for a in argv if a != "--json"]
    unknown = [a for a in paths if a.startswith("-") and a != "-"]
    if unknown or not paths:
        sys.stderr.write(_DIGEST_USAGE)
        _fail(InputError(f"unknown option {unknown[0]}" if unknown else "PATH is required"))
    from prov_core.digest import digest_path

    docs = []
    try:
        for p in paths:
            tree = digest_path(Path(p))
            if as_json:
                docs.append(
                    {
                        "path": p,
                        "blake3": tree.blake3,
                        "sha256_subject": tree.sha256_subject,
                        "files": len(tree.files),
                        "bytes": tree.bytes,
                    }
                )
            else:
                sys.stdout.write(f"{tree.blake3}  {p}\n")
    except ProvgateError as exc:
        _fail(exc)
    if as_json:
        if len(docs) == 1:
            del docs[0]["path"]
            _emit_json(docs[0])
        else:
            _emit_json(docs)
    return 0


# --- the typer application ----------------------------------------------------


def _build_app() -> typer.Typer:
    import json
    from collections.abc import Iterator
    from contextlib import contextmanager

    import typer
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    app = typer.Typer(
        name="provgate",
        help="Signed, tamper-evident provenance for ML data: digest, ingest, verify, prove.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    log_app = typer.Typer(help="The Merkle log: checkpoints and proofs.", no_args_is_help=True)
    keys_app = typer.Typer(help="Signing keys: list, rotate, revoke.", no_args_is_help=True)
    app.add_typer(log_app, name="log")
    app.add_typer(keys_app, name="keys")
    snapshot_app = typer.Typer(
        help="Dataset snapshots: commit files as a signed, pinned commit; show; verify.",
        no_args_is_help=True,
    )
    app.add_typer(snapshot_app, name="snapshot")
    gate_app = typer.Typer(
        help="The training gate: allow only pinned, verified, policy-allowed inputs.",
        no_args_is_help=True,
    )
    app.add_typer(gate_app, name="gate")
    sample_app = typer.Typer(
        help="Samples: prove one in or out of a snapshot, against signed roots.",
        no_args_is_help=True,
    )
    app.add_typer(sample_app, name="sample")
    export_app = typer.Typer(
        help="Export the ledger to other lineage formats.", no_args_is_help=True
    )
    app.add_typer(export_app, name="export")
    state: dict[str, Path | None] = {"home": None}

    @app.callback()
    def _root(
        home: Path | None = typer.Option(
            None, "--home", envvar="PROVGATE_HOME", help="provgate home (default ./.provgate)"
        ),
    ) -> None:
        state["home"] = home

    @contextmanager
    def errors() -> Iterator[None]:
        from prov_core.errors import ProvgateError

        try:
            yield
        except ProvgateError as exc:
            _fail(exc)

    def opened() -> Any:
        from prov_core.home import open_home

        return open_home(state["home"])

    def progress_bar(in_bytes: bool) -> Any:
        """A transient progress bar on the terminal (stderr); invisible when piped."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        columns = (
            (DownloadColumn(), TransferSpeedColumn())
            if in_bytes
            else (MofNCompleteColumn(), TimeElapsedColumn())
        )
        return Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            *columns,
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )

    @app.command()
    def init() -> None:
        """Create $PROVGATE_HOME with a signing key, trust store and ledger (idempotent)."""
        from prov_core.home import init_home

        with errors():
            home, created = init_home(state["home"])
            keyid = home.own_keyid()
            verb = "created" if created else "already initialised"
            err.print(f"{verb}: {home.path}  (origin {home.origin}, signing key {keyid})")

    @app.command()
    def ingest(
        path: Path = typer.Argument(
            ...,
            help="a file (CSV, Parquet, JSON Lines: one id per row) "
            "or a directory (one id per file)",
        ),
        source: str = typer.Option(..., "--source", help="where the data came from (URI)"),
        license: str = typer.Option(..., "--license", help="SPDX license identifier or expression"),
        method: str = typer.Option("unspecified", "--method", help="collection method"),
        issuer: str | None = typer.Option(None, "--issuer", help="who issued the data"),
        license_url: str | None = typer.Option(None, "--license-url"),
        geography: str | None = typer.Option(None, "--geography", help="origin geography"),
        confidentiality: str | None = typer.Option(None, "--confidentiality"),
        consent: str | None = typer.Option(None, "--consent", help="where consent is recorded"),
        intended_use: str | None = typer.Option(None, "--intended-use"),
        files: bool = typer.Option(False, "--files", help="one sample per file even for tables"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    ) -> None:
        """Digest each row or file, sign the ingest record and append it to the ledger."""
        from prov_core.ingest import IngestRequest, ingest_path
        from prov_core.step import Recorder

        with errors():
            home = opened()
            request = IngestRequest(
                source=source,
                license=license,
                method=method,
                issuer=issuer,
                license_url=license_url,
                geography=geography,
                confidentiality=confidentiality,
                consent_location=consent,
                intended_use=intended_use,
                per_file=files,
            )
            with (
                progress_bar(in_bytes=True) as bar,
                Recorder.from_home(home) as recorder,
                home.open_index() as index,
            ):
                task = bar.add_task("digesting", total=None)
                result = ingest_path(
                    recorder,
                    path,
                    request,
                    progress=lambda n: bar.update(task, advance=n),
                    index=index,
                    samples_store=home.open_samples(),
                )
            doc = {
                "log_index": result.attestation.log_index,
                "envelope_sha256": result.attestation.envelope_sha256,
                "root": result.root,
                "samples": result.samples,
            }
            if as_json:
                _emit_json(doc)
            else:
                err.print(
                    f"ingested {result.samples} {result.unit} from {path}\n"
                    f"  log index  {result.attestation.log_index}\n"
                    f"  root       {result.root}\n"
                    f"  envelope   sha256:{result.attestation.envelope_sha256}"
                )

    @app.command()
    def show(
        index: int = typer.Argument(..., help="0-based log index"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Print a ledger entry: the DSSE envelope and its decoded statement."""
        from prov_core.records import decode_entry

        with errors():
            home = opened()
            with home.open_ledger() as ledger:
                envelope, statement = decode_entry(ledger.entry(index))
            if as_json:
                _emit_json({"envelope": envelope, "statement": statement})
                return
            signers = ", ".join(sig.get("keyid", "?") for sig in envelope["signatures"])
            err.print(f"entry {index}: {statement.get('predicateType')}")
            for subject in statement.get("subject", []):
                err.print(f"  subject  {subject.get('name')}  sha256:{subject['digest']['sha256']}")
            err.print(f"  signed   {signers}")
            sys.stdout.write(json.dumps(statement.get("predicate"), indent=2) + "\n")

    @app.command()
    def verify(
        as_json: bool = typer.Option(False, "--json"),
        artifact: str | None = typer.Option(
            None,
            "--artifact",
            help="verify only the chain of custody of this artifact: a digest "
            "([blake3:|sha256:]HEX), a log index, provgate://REPO/COMMIT, or a URI an "
            "installed resolver reads (models:/NAME/VERSION with provgate[mlflow])",
        ),
    ) -> None:
        """Verify the whole ledger (signatures, trust, the Merkle tree against checkpoints),
        or with --artifact one artifact's chain of custody back to its ingest records."""
        from prov_core.verify import verify_home

        if artifact is not None:
            verify_artifact(artifact, as_json)
            return
        with errors():
            home = opened()
            with progress_bar(in_bytes=False) as bar:
                task = bar.add_task("verifying", total=None)
                report = verify_home(home, progress=lambda n: bar.update(task, advance=n))
        if as_json:
            _emit_json(report.to_dict())
        else:
            for problem in report.problems:
                err.print(f"[red]FAIL[/red] {problem.kind}: {problem.message}", markup=True)
            status = "[green]OK[/green]" if report.ok else "[red]FAILED[/red]"
            err.print(
                f"{status}: {report.entries} entries, checkpoint size {report.checkpoint_size}, "
                f"{len(report.problems)} problem(s)"
            )
        raise typer.Exit(0 if report.ok else 1)

    def verify_artifact(artifact: str, as_json: bool) -> None:
        """``verify --artifact``: every link upstream of one artifact, named when broken."""
        from rich.markup import escape

        from prov_core.lineage import open_lineage

        with errors():
            home = opened()
            with open_lineage(home) as lineage:
                report = lineage.verify_chain(artifact)
        if as_json:
            _emit_json(report.to_dict())
            raise typer.Exit(0 if report.ok else 1)
        for i in sorted(report.records):
            rec = report.records[i]
            mark = "[green]ok  [/green]" if rec.ok else "[red]FAIL[/red]"
            checks = ", ".join(f"{k} {v}" for k, v in rec.checks.items())
            err.print(f"{mark} {i:>6} {rec.kind:<9} {escape(rec.name)}  [dim]{checks}[/dim]")
        for problem in report.problems:
            where = f"record {problem.log_index}" if problem.log_index is not None else "ledger"
            err.print(f"[red]BROKEN[/red] {problem.check}: {where}: ", end="")
            err.print(problem.message, markup=False)
        status = "[green]OK[/green]" if report.ok else "[red]FAILED[/red]"
        broken = (
            f"; broken: record(s) {', '.join(map(str, report.broken))}" if report.broken else ""
        )
        err.print(
            f"{status}: chain of custody of {escape(artifact)}: {len(report.records)} record(s) "
            f"checked against checkpoint size {report.checkpoint_size}, "
            f"{len(report.problems)} problem(s){broken}"
        )
        raise typer.Exit(0 if report.ok else 1)

    @app.command()
    def trace(
        target: str | None = typer.Argument(
            None,
            help="an artifact digest ([blake3:|sha256:]HEX), a log index, a pinned "
            "snapshot provgate://REPO/COMMIT | lakefs://REPO/COMMIT, or a URI an installed "
            "resolver reads (models:/NAME/VERSION with provgate[mlflow])",
        ),
        up: bool = typer.Option(
            True,
            "--up/--down",
            help="walk to what it was made from (default) or what was made from it",
        ),
        sample: str | None = typer.Option(
            None,
            "--sample",
            help="start from every record whose signed sample set holds this sample id "
            "(64 hex; with --down: every snapshot and model made from data containing it)",
        ),
        fmt: str = typer.Option("tree", "--format", help="tree | json | dot"),
    ) -> None:
        """Show the lineage of an artifact: upstream to its ingest records, or downstream."""
        from prov_core.errors import InputError
        from prov_core.lineage import open_lineage

        holders: Any = None
        with errors():
            if fmt not in ("tree", "json", "dot"):
                raise InputError(f"--format {fmt!r}: choose tree, json or dot")
            if (target is None) == (sample is None):
                raise InputError("give a TARGET or --sample SAMPLE_ID (one of them)")
            if sample is not None and up:
                raise InputError("--sample walks down: add --down")
            home = opened()
            with open_lineage(home) as lineage:
                if sample is not None:
                    from prov_core.snapshot_samples import records_holding

                    lineage.catch_up()
                    holders = records_holding(
                        sample,
                        ledger=lineage.ledger,
                        ingests=lineage.index.find(kind="ingest"),
                        snapshots=lineage.index.find(kind="snapshot"),
                        trust=home.trust(),
                        samples=home.open_samples(),
                    )
                    graph = lineage.downstream_of_records(holders.records, f"sample {sample}")
                else:
                    assert target is not None
                    graph = lineage.upstream(target) if up else lineage.downstream(target)
        if holders is not None:
            for note in holders.unchecked:
                err.print(f"[yellow]unchecked:[/yellow] {note}")
            if not holders.records:
                err.print("no record's signed sample set holds this sample")
        if fmt == "json":
            doc = graph.to_dict()
            if holders is not None:
                doc["sample"] = holders.to_dict()
                doc["models"] = [n.log_index for n in graph.of_kind("training")]
            _emit_json(doc)
        elif fmt == "dot":
            sys.stdout.write(graph.to_dot())
        else:
            print_tree(graph)

    def print_tree(graph: Any) -> None:
        """The walk as a rich tree on stdout; a node met again is shown once, then referred to."""
        from rich.console import Console
        from rich.markup import escape
        from rich.tree import Tree

        styles = {"ingest": "green", "training": "bold magenta", "snapshot": "cyan"}
        nodes, down = graph.nodes, graph.direction == "down"
        nexts: dict[int, list[int]] = {}
        for e in graph.edges:
            a, b = (e.parent, e.child) if down else (e.child, e.parent)
            nexts.setdefault(a, []).append(b)

        def label(i: int) -> str:
            n = nodes.get(i)
            if n is None:
                return f"[red]{i} (not in the ledger)[/red]"
            style = styles.get(n.kind, "")
            text = f"[{style}]{n.kind}[/{style}]" if style else n.kind
            extra = ""
            if n.kind == "ingest":
                extra = f"  [dim]{escape(n.license or '?')}[/dim]"
            elif n.kind == "training":
                extra = "  [dim](model)[/dim]"
            return f"[bold]{i}[/bold] {text} {escape(n.name)}{extra}"

        shown: set[int] = set()

        def grow(tree: Tree, i: int) -> None:
            for j in sorted(set(nexts.get(i, []))):
                if j in shown:
                    tree.add(f"{label(j)} [dim](see above)[/dim]")
                    continue
                shown.add(j)
                grow(tree.add(label(j)), j)

        out = Console(highlight=False, soft_wrap=True)
        for root in graph.roots:
            shown.add(root)
            tree = Tree(label(root))
            grow(tree, root)
            out.print(tree)
        ingests = [n for n in nodes.values() if n.kind == "ingest"]
        models = [n for n in nodes.values() if n.kind == "training"]
        err.print(
            f"{len(nodes)} record(s) {graph.direction}stream of {escape(graph.target)}: "
            f"{len(ingests)} ingest record(s), {len(models)} model(s)"
        )

    @log_app.command("checkpoint")
    def log_checkpoint() -> None:
        """Print the latest signed checkpoint (C2SP signed-note text)."""
        from prov_core.errors import LedgerError

        with errors():
            home = opened()
            with home.open_ledger() as ledger:
                note = ledger.latest_checkpoint()
            if note is None:
                raise LedgerError("the ledger is empty: no checkpoint yet")
            sys.stdout.write(note.decode())

    @log_app.command("serve")
    def log_serve(
        listen: str = typer.Option(
            "127.0.0.1:7465", "--listen", help="host:port to take appends on"
        ),
    ) -> None:
        """Run the sequencer of a PostgreSQL ledger: workers append through it.

        Point the workers at it with PROVGATE_LEDGER_SEQUENCER=HOST:PORT (besides
        PROVGATE_LEDGER_URL). It integrates their appends in batches, one signed
        checkpoint each; if it stops, they append without it. Anyone who can
        connect can append: listen where only the workers reach it.
        """
        import signal

        from rich.markup import escape

        from prov_core.errors import ConfigError
        from prov_core.ledger.postgres import PostgresLedger
        from prov_core.ledger.sequencer import SequencerServer, parse_address

        with errors():
            home = opened()
            host, port = parse_address(listen)
            if home.ledger_url is None:
                raise ConfigError(
                    "the sequencer serves a PostgreSQL ledger; set PROVGATE_LEDGER_URL"
                    " (docs/scaling.md)"
                )
            ledger = home.open_ledger(sequenced=False)
            assert isinstance(ledger, PostgresLedger)
            try:
                server = SequencerServer(ledger, host, port)
            except OSError as exc:
                ledger.close()
                raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
            signal.signal(signal.SIGTERM, lambda *_: server.close())
            bound = server.address
            err.print(
                f"sequencer of {escape(ledger.url)} listening on {bound[0]}:{bound[1]}"
                " (Ctrl-C stops it)"
            )
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                server.close()
            err.print(
                f"sequencer stopped: {server.appended} append(s) in {server.batches} batch(es)"
            )

    @log_app.command("witness")
    def log_witness(
        path: Path = typer.Argument(
            ..., help="where the witnessed checkpoint is kept (outside the home)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    ) -> None:
        """Check the log still extends the checkpoint kept at PATH, then store the latest there.

        Run it on a schedule: exit 1 (PATH left as evidence) when the log shrank or
        its history was rewritten, even with a valid signing key.
        """
        from prov_core.witness import witness

        with errors():
            home = opened()
            with home.open_ledger() as ledger:
                result = witness(ledger, home.note_verifiers(), path)
        if as_json:
            _emit_json(result.to_dict())
            return
        if result.status == "created":
            err.print(f"witnessing {path}: checkpoint of size {result.new_size} stored")
        else:
            err.print(
                f"OK: the log of size {result.new_size} extends the witnessed size "
                f"{result.old_size} ({result.status}; {path})"
            )

    @log_app.command("prove")
    def log_prove(
        index: int = typer.Argument(..., help="0-based log index"),
        size: int | None = typer.Option(None, "--size", help="tree size (default: latest)"),
        as_json: bool = typer.Option(False, "--json"),
        receipt: bool = typer.Option(False, "--receipt", help="print a C2SP tlog-proof@v1"),
    ) -> None:
        """Print an inclusion proof of entry INDEX in the tree of SIZE entries."""
        from prov_core.records import inclusion_proof

        with errors():
            home = opened()
            with home.open_ledger() as ledger:
                if receipt:
                    sys.stdout.write(ledger.receipt(index, size).decode())
                    return
                doc = inclusion_proof(ledger, index, size)
            if as_json:
                _emit_json(doc)
            else:
                err.print(f"entry {doc['leaf_index']} in tree of {doc['tree_size']} entries")
                err.print(f"leaf hash {doc['leaf_hash']}\nroot hash {doc['root_hash']}")
                for i, h in enumerate(doc["audit_path"]):
                    sys.stdout.write(f"{i:3d} {h}\n")

    @log_app.command("consistency")
    def log_consistency(
        old: int = typer.Argument(..., help="older tree size"),
        new: int = typer.Argument(..., help="newer tree size"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Print a consistency proof between tree sizes OLD and NEW."""
        from prov_core.records import consistency_proof

        with errors():
            home = opened()
            with home.open_ledger() as ledger:
                doc = consistency_proof(ledger, old, new)
            if as_json:
                _emit_json(doc)
            else:
                err.print(f"old {doc['old_size']} root {doc['old_root']}")
                err.print(f"new {doc['new_size']} root {doc['new_root']}")
                for i, h in enumerate(doc["path"]):
                    sys.stdout.write(f"{i:3d} {h}\n")

    @contextmanager
    def snapshot_store(uri: Any, home: Any) -> Iterator[Any]:
        from prov_core.snapshot_record import open_store_for

        store: Any = open_store_for(uri, home)  # both backends have close()
        try:
            yield store
        finally:
            store.close()

    @sample_app.command("prove")
    def sample_prove(
        sample_id: str = typer.Argument(..., help="the sample id, 64 hex digits"),
        snapshot: str = typer.Option(
            ..., "--snapshot", help="provgate://REPO/COMMIT or lakefs://REPO/COMMIT"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the answer and its proofs"),
    ) -> None:
        """Prove a sample in or out of a snapshot (exit 0 present, 1 absent, 3 unknown)."""
        from prov_core.snapshot_samples import prove_in_snapshot
        from prov_core.snapshots.base import SnapshotURI

        with errors():
            target = SnapshotURI.parse(snapshot)
            home = opened()
            with (
                snapshot_store(target, home) as store,
                home.open_ledger() as ledger,
                home.open_index() as index,
            ):
                answer = prove_in_snapshot(
                    sample_id,
                    store,
                    target.repository,
                    target.ref,
                    ledger=ledger,
                    index=index,
                    trust=home.trust(),
                    samples=home.open_samples(),
                )
        if as_json:
            _emit_json(answer.to_dict())
        else:
            sys.stdout.write(f"{answer.verdict}\n")
            for e in answer.evidence:
                kind = "member of" if e.member else "not in"
                err.print(
                    f"{kind} {e.scope}: {e.proof.count} samples, root {e.proof.root.hex()} "
                    f"signed in log entry {e.record}"
                )
            for note in answer.unprovable:
                err.print(f"[yellow]unprovable:[/yellow] {note}")
            err.print("the proofs: provgate sample prove --json")
        raise typer.Exit({"present": 0, "absent": 1}.get(answer.verdict, 3))

    @export_app.command("openlineage")
    def export_openlineage(
        start: int = typer.Option(0, "--from", help="first log index (default 0)"),
        end: int | None = typer.Option(
            None, "--to", help="last log index, inclusive (default: the last entry)"
        ),
        transport_config: Path | None = typer.Option(
            None,
            "--transport-config",
            help="openlineage-python config file (YAML or JSON with a 'transport' mapping)",
        ),
        transport_env: bool = typer.Option(
            False,
            "--transport-env",
            help="send through OpenLineageClient() configured by openlineage-python itself "
            "(OPENLINEAGE_CONFIG, openlineage.yml, OPENLINEAGE_URL, ...)",
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="write JSON lines to FILE (default: stdout)"
        ),
        namespace: str | None = typer.Option(
            None, "--namespace", help="job namespace (default: the ledger's origin)"
        ),
    ) -> None:
        """Export log entries as OpenLineage run events: as JSON lines, or through a transport."""
        from prov_core.errors import InputError
        from prov_core.export import openlineage as ol

        with errors():
            given = {
                "--transport-config": transport_config is not None,
                "--transport-env": transport_env,
                "--output": output is not None,
            }
            chosen = [name for name, on in given.items() if on]
            if len(chosen) > 1:
                raise InputError(f"give one of {', '.join(chosen)}, not several")
            if end is not None and end < start:
                raise InputError(f"--to {end} is before --from {start}")
            stop = None if end is None else end + 1
            home = opened()
            with home.open_ledger() as ledger:
                if transport_config is not None or transport_env:
                    client = (
                        ol.client_from_config(transport_config)
                        if transport_config is not None
                        else None
                    )
                    n = ol.emit_openlineage(ledger, start, stop, client=client, namespace=namespace)
                    err.print(f"{n} OpenLineage event(s) sent")
                    return
                lines = list(ol.openlineage_json_lines(ledger, start, stop, namespace=namespace))
            text = "".join(line + "\n" for line in lines)
            write_text_out(text, output, f"{len(lines)} OpenLineage event(s)")

    @app.command()
    def ui(
        host: str = typer.Option(
            "127.0.0.1",
            "--host",
            help="address to bind (loopback by default: the view has no authentication)",
        ),
        port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port"),
    ) -> None:
        """Serve the read-only lineage web view (needs: pip install 'provgate[ui]')."""
        from prov_core.web import serve

        with errors():
            home = opened()
            err.print(f"provgate ui: http://{host}:{port}/ (Ctrl-C to stop)")
            serve(home, host=host, port=port)

    @app.command()
    def report(
        target: str = typer.Argument(
            ..., help="a model or artifact: digest, log index or provgate://REPO/COMMIT"
        ),
        fmt: str = typer.Option("html", "--format", "-f", help="html or md"),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="write to FILE (default: stdout)"
        ),
    ) -> None:
        """Write the data-governance report of a model or artifact (docs/compliance.md).

        Exits 1 when a record behind it fails verification (the report is still
        written, with those records marked FAILED).
        """
        from prov_core.errors import InputError
        from prov_core.export import report as rp

        with errors():
            if fmt not in ("html", "md"):
                raise InputError(f"--format {fmt!r}: give html or md")
            built = rp.build_report(target, opened())
            text = rp.to_html(built) if fmt == "html" else rp.to_markdown(built)
            write_text_out(text, output, f"report of {target}")
        if not built.ok:
            broken = ", ".join(str(i) for i in built.failing) or "the chain"
            err.print(f"[red]FAILED[/red]: record(s) {broken} do not verify (marked in the report)")
            raise typer.Exit(1)

    @export_app.command("prov")
    def export_prov(
        target: str = typer.Argument(
            ..., help="where to start: digest, log index or provgate://REPO/COMMIT"
        ),
        down: bool = typer.Option(
            False, "--down", help="walk downstream (what was made from it) instead of up"
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="write PROV-JSON to FILE (default: stdout)"
        ),
    ) -> None:
        """Export the lineage of TARGET as W3C PROV-JSON (needs provgate[prov])."""
        from prov_core.export import prov as pv

        with errors():
            text = pv.to_prov_json(pv.export_prov(target, opened(), down=down)) + "\n"
            write_text_out(text, output, f"PROV-JSON of {target}")

    def write_text_out(text: str, output: Path | None, what: str) -> None:
        """Text to stdout, or atomically to ``output`` (InputError naming it if it cannot)."""
        from prov_core._fs import write_atomic
        from prov_core.errors import InputError

        if output is None:
            sys.stdout.write(text)
            return
        try:
            write_atomic(output, text.encode("utf-8"), mode=0o644)
        except OSError as exc:
            raise InputError(f"{output}: cannot write: {exc.strerror}") from exc
        err.print(f"{what} written to {output}")

    @snapshot_app.command("commit")
    def snapshot_commit(
        path: Path = typer.Argument(..., help="a file or a directory to upload"),
        uri: str = typer.Argument(
            ..., help="provgate://REPO/BRANCH[/PREFIX] (embedded store) or lakefs://..."
        ),
        message: str = typer.Option("", "-m", "--message", help="commit message"),
        as_json: bool = typer.Option(False, "--json", help='print {"commit", "log_index"}'),
    ) -> None:
        """Upload PATH under the prefix, commit it and sign a snapshot record."""
        from prov_core.errors import InputError
        from prov_core.nodes import ensure_branch
        from prov_core.snapshot_record import commit_snapshot, normalize_prefix
        from prov_core.snapshots.base import SnapshotURI
        from prov_core.step import Recorder

        with errors():
            target = SnapshotURI.parse(uri)
            prefix = normalize_prefix(target.path)
            if target.pinned or target.ref.endswith("@"):
                raise InputError(
                    f"{uri}: snapshot commit writes to a branch, not {target.ref!r} "
                    f"(give {target.scheme}://{target.repository}/BRANCH[/PREFIX])"
                )
            if not path.exists():
                raise InputError(f"{path}: no such file or directory")
            home = opened()
            with (
                snapshot_store(target, home) as store,
                Recorder.from_home(home) as recorder,
                home.open_index() as index,
            ):
                if target.scheme == "provgate" and ensure_branch(
                    store, target.repository, target.ref
                ):
                    err.print(f"created repository {target.repository} (branch main)")
                result = commit_snapshot(
                    recorder,
                    store,
                    target.repository,
                    target.ref,
                    path,
                    prefix=prefix,
                    message=message,
                    index=index,
                )
        if as_json:
            _emit_json({"commit": result.commit_id, "log_index": result.log_index})
            return
        pinned = f"{target.scheme}://{target.repository}/{result.commit_id}"
        err.print(
            f"committed {len(result.objects)} object(s) as {pinned}/{prefix}\n"
            f"  log index  {result.log_index}\n"
            f"  manifest   blake3:{result.manifest.blake3}"
        )
        if result.uncovered:
            err.print(
                f"[yellow]{len(result.uncovered)} object(s) no signed record covers "
                "(the gate will refuse them):[/yellow]",
                markup=True,
            )
            for p in result.uncovered:
                err.print(f"  {p}", markup=False)

    @snapshot_app.command("show")
    def snapshot_show(
        uri: str = typer.Argument(..., help="provgate://REPO/REF or lakefs://REPO/REF"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Show a commit: its metadata and its snapshot record (log index, objects, uncovered)."""
        from prov_core.errors import IntegrityError
        from prov_core.snapshot_record import find_snapshot_record
        from prov_core.snapshots.base import SnapshotURI

        with errors():
            target = SnapshotURI.parse(uri)
            home = opened()
            with (
                snapshot_store(target, home) as store,
                home.open_ledger() as ledger,
                home.open_index() as index,
            ):
                commit = store.get_commit(target.repository, target.ref)
                try:
                    record = find_snapshot_record(ledger, index, store, target.repository, commit)
                except IntegrityError as exc:
                    record, missing = None, str(exc)
            doc = {
                "commit": commit.id,
                "repository": target.repository,
                "ref": target.ref,
                "store": store.kind,
                "message": commit.message,
                "metadata": dict(commit.metadata),
                "creation_date": commit.creation_date,
                "log_index": None if record is None else record.log_index,
                "objects": None if record is None else len(record.objects),
                "uncovered": None if record is None else list(record.uncovered),
            }
        if as_json:
            _emit_json(doc)
            return
        err.print(f"commit {commit.id}  ({target.scheme}://{target.repository}/{target.ref})")
        err.print(f"  message    {commit.message}", markup=False)
        for key, value in sorted(commit.metadata.items()):
            err.print(f"  metadata   {key}={value}", markup=False)
        if record is None:
            err.print(f"  [yellow]no snapshot record[/yellow]: {missing}", markup=True)
            return
        err.print(f"  log index  {record.log_index}  (not verified: run `snapshot verify`)")
        err.print(f"  objects    {len(record.objects)}, uncovered {len(record.uncovered)}")
        for p in record.uncovered:
            err.print(f"  uncovered  {p}", markup=False)

    @snapshot_app.command("verify")
    def snapshot_verify(
        uri: str = typer.Argument(..., help="provgate://REPO/COMMIT or lakefs://REPO/COMMIT"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Re-read and re-hash every object of a commit against its signed snapshot record."""
        from prov_core.errors import InputError
        from prov_core.snapshot_record import verify_snapshot
        from prov_core.snapshots.base import SnapshotURI

        with errors():
            target = SnapshotURI.parse(uri)
            if target.path:
                raise InputError(
                    f"{uri}: snapshot verify checks a whole snapshot; give "
                    f"{target.scheme}://{target.repository}/{target.ref} without a path"
                )
            home = opened()
            with (
                snapshot_store(target, home) as store,
                home.open_ledger() as ledger,
                home.open_index() as index,
            ):
                report = verify_snapshot(
                    store,
                    target.repository,
                    target.ref,
                    ledger=ledger,
                    trust=home.trust(),
                    index=index,
                )
        if as_json:
            _emit_json(report.to_dict())
        else:
            for problem in report.problems:
                err.print(f"[red]FAIL[/red] {problem.kind}: ", markup=True, end="")
                err.print(problem.message, markup=False)
            status = "[green]OK[/green]" if report.ok else "[red]FAILED[/red]"
            err.print(
                f"{status}: {report.uri}, record {report.log_index}, "
                f"{report.checked}/{report.objects} object(s) re-hashed, "
                f"{len(report.problems)} problem(s)",
                markup=True,
            )
        raise typer.Exit(0 if report.ok else 1)

    @gate_app.command("check")
    def gate_check(
        inputs: list[str] = typer.Option(
            ...,
            "--input",
            help="a pinned snapshot: provgate://REPO/COMMIT[/PATH] or lakefs://REPO/COMMIT[/PATH]"
            " (repeat for several inputs)",
        ),
        policy_file: Path | None = typer.Option(
            None, "--policy", help="policy file (TOML; default: the built-in policy)"
        ),
        as_json: bool = typer.Option(
            False,
            "--json",
            help='print {"allowed", "reasons", "vsa_log_index", "policy_digest"}',
        ),
    ) -> None:
        """Judge a training step's inputs; record the decision; exit 0 allowed, 1 refused."""
        from prov_core.gate import evaluate_gate
        from prov_core.policy import Policy
        from prov_core.snapshots.base import SnapshotURI

        with errors():
            uris = [SnapshotURI.parse(text) for text in inputs]  # usage errors exit 2
            policy = Policy.load(policy_file) if policy_file is not None else Policy.default()
            home = opened()
            decision = evaluate_gate(uris, home=home, policy=policy)
        if as_json:
            _emit_json(decision.to_dict())
        else:
            for reason in decision.reasons:
                rule = f" [{reason.rule_id}]" if reason.rule_id else ""
                where = f"{reason.input}: " if reason.input else ""
                err.print(f"[red]REFUSED[/red] {reason.code}{rule}: ", markup=True, end="")
                err.print(f"{where}{reason.message}", markup=False)
            status = "[green]ALLOWED[/green]" if decision.allowed else "[red]REFUSED[/red]"
            logged = (
                f"decision recorded at log index {decision.vsa.log_index}"
                if decision.vsa is not None
                else "decision NOT recorded"
            )
            err.print(
                f"{status}: {len(uris)} input(s), {len(decision.reasons)} reason(s); {logged}; "
                f"policy sha256:{decision.policy_digest}",
                markup=True,
            )
        raise typer.Exit(0 if decision.allowed else 1)

    @app.command()
    def digest(
        paths: list[Path] = typer.Argument(..., help="files or directories"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Print BLAKE3 digests as b3sum does (HEX  PATH), recording nothing."""
        raise typer.Exit(_digest_main([*map(str, paths), *(["--json"] if as_json else [])]))

    @keys_app.command("list")
    def keys_list(as_json: bool = typer.Option(False, "--json")) -> None:
        """List the trust store's keys: key id, public key, status, note name."""
        with errors():
            home = opened()
            rows = [
                {
                    "keyid": e.keyid,
                    "public_key": e.public_key_pem,
                    "status": e.status,
                    "note_name": e.note_name,
                }
                for e in home.trust().entries()
            ]
        if as_json:
            _emit_json(rows)
        else:
            for r in rows:
                sys.stdout.write(f"{r['keyid']}  {r['status']:8s}  {r['note_name']}\n")

    @keys_app.command("rotate")
    def keys_rotate(as_json: bool = typer.Option(False, "--json")) -> None:
        """Make a new active signing key; the old one is retired (its records stay valid)."""
        from prov_core.key_events import rotate_key

        with errors():
            event = rotate_key(opened())
        if as_json:
            _emit_json(event)
        else:
            err.print(f"new active key {event['new_keyid']}; retired {event['old_keyid']}")

    @keys_app.command("revoke")
    def keys_revoke(
        keyid: str = typer.Argument(..., help="key id (as `keys list` shows it)"),
        reason: str = typer.Option("unspecified", "--reason"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Revoke a key: every record it signed fails verification from now on."""
        from prov_core.key_events import revoke_key

        with errors():
            event = revoke_key(opened(), keyid, reason)
        if as_json:
            _emit_json(event)
        else:
            err.print(f"revoked {keyid}: {reason}")

    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``provgate`` console script."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["digest"]:
        raise SystemExit(_digest_main(args[1:]))
    app = _build_app()
    app(args=args, prog_name="provgate")


if __name__ == "__main__":
    main()
