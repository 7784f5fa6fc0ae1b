"""The audit report (prov_core.export.report) on a real lineage: content, escaping, tampering."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from prov_core.errors import InputError, NotFoundError
from prov_core.export.report import (
    HUMAN_SECTIONS,
    NOT_MARKED,
    AuditReport,
    build_report,
    to_html,
    to_markdown,
)
from prov_core.ledger.checkpoint import verify_receipt
from prov_core.step import TRAINING_BUILD_TYPE, Artifact, record_step

from .report_pipeline import HOSTILE, Pipeline, pipeline, tamper_step_name


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Pipeline]:
    with pipeline(tmp_path) as p:
        yield p


def _text(page: str) -> str:
    """The visible text of an HTML page (tags and the style sheet dropped, entities decoded)."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.style = False

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self.style = tag == "style"

        def handle_endtag(self, tag: str) -> None:
            self.style = False

        def handle_data(self, data: str) -> None:
            if not self.style:
                self.parts.append(data)

    parser = Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


def _md_text(md: str) -> str:
    """Markdown with its escapes undone (backslash escapes, then HTML entities)."""
    return html.unescape(re.sub(r"\\(.)", r"\1", md))


def test_report_names_every_source_license_transform_snapshot_and_gate(pipe: Pipeline) -> None:
    report = build_report(f"blake3:{pipe.model_b3}", pipe.home)
    assert report.ok, (report.problems, report.failing)
    assert report.roots == report.models == (pipe.train.log_index,)
    # Two datasets: the training snapshot and the validation snapshot (the gate is not data).
    by_index = {d.log_index: d for d in report.datasets}
    assert set(by_index) == {pipe.snap_train.log_index, pipe.snap_val.log_index}
    train, val = by_index[pipe.snap_train.log_index], by_index[pipe.snap_val.log_index]
    assert train.sources == tuple(pipe.ingests[k] for k in "ABC")
    assert train.steps == (pipe.clean.log_index, pipe.merge.log_index)
    assert val.sources == (pipe.ingests["D"],)
    assert val.steps == ()
    assert train.snapshot is not None
    assert train.snapshot.commit_id == pipe.snap_train.commit_id
    assert val.split == "validation"
    assert train.split is None
    assert train.split_text == NOT_MARKED
    gate = pipe.gate.vsa.log_index
    assert train.gates == val.gates == (gate,)
    assert report.gates[gate].result == "PASSED"
    assert report.gates[gate].policy_digest == pipe.gate.policy_digest
    src = report.sources[pipe.ingests["B"]]
    assert (src.files, src.samples, src.license) == (2, 2, "CC-BY-4.0")
    assert report.sources[pipe.ingests["A"]].collection_method == "download"

    for text in (_text(to_html(report)), _md_text(to_markdown(report))):
        for uri, spdx in pipe.sources.values():
            assert uri in text
            assert spdx in text
        for step in ("clean", "merge", "train"):
            assert f"'{step}'" in text or f" {step} " in text
        for snap in (pipe.snap_train, pipe.snap_val):
            assert snap.commit_id in text
        assert f"record {gate}: verified" in text
        assert "PASSED" in text
        assert pipe.gate.policy_digest in text
        assert "validation" in text
        assert NOT_MARKED in text
        assert "FAILED" not in text
        for provision, _ in HUMAN_SECTIONS:
            assert provision in text


def test_evidence_appendix_has_a_checkable_receipt_per_record(pipe: Pipeline) -> None:
    report = build_report(pipe.train.log_index, pipe.home)
    expected = {
        pipe.train.log_index,
        pipe.gate.vsa.log_index,
        pipe.snap_train.log_index,
        pipe.snap_val.log_index,
        pipe.clean.log_index,
        pipe.merge.log_index,
        *pipe.ingests.values(),
    }
    assert set(report.evidence) == expected
    assert report.checkpoint is not None
    assert report.checkpoint_size == pipe.recorder.ledger.size()
    verifiers = pipe.home.note_verifiers()
    page = to_html(report)
    for i, evidence in report.evidence.items():
        assert evidence.ok, evidence
        assert evidence.checks["signature"] == "ok"
        assert evidence.checks["inclusion"] == "ok"
        assert evidence.receipt is not None
        checkpoint = verify_receipt(
            evidence.receipt.encode(), pipe.recorder.ledger.entry(i), verifiers
        )
        assert checkpoint.size == report.checkpoint_size
        assert html.escape(evidence.receipt) in page
    assert html.escape(report.checkpoint) in page


def _loading_attributes(page: str) -> list[tuple[str, str]]:
    """The (tag, attribute) pairs that would make a browser load something."""
    found: list[tuple[str, str]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend((tag, a) for a, _ in attrs if a in ("src", "href", "srcset", "action"))

    Collect().feed(page)
    return found


def test_html_escapes_hostile_strings(pipe: Pipeline) -> None:
    report = build_report(f"blake3:{pipe.model_b3}", pipe.home)
    page = to_html(report)
    assert "<script" not in page.lower()
    assert html.escape(HOSTILE) in page  # shown, as text
    assert "eve &lt;eve@example.org&gt;" in page  # the collector
    assert HOSTILE in _text(page)
    # self-contained: nothing to load, and a CSP that forbids loading anything
    assert _loading_attributes(page) == []
    assert "default-src 'none'" in page
    md = to_markdown(report)
    assert "<script" not in md.lower()
    assert HOSTILE in _md_text(md)


def test_markdown_values_cannot_break_tables_or_add_markup() -> None:
    from prov_core.export.report import _md

    assert _md("a|b") == "a\\|b"
    assert _md("[x](http://evil)") == "\\[x\\](http://evil)"
    assert _md("two\nlines") == "two lines"
    assert _md("# not a heading", line=True).startswith("\\#")
    assert _md("1. not a list", line=True) == "1\\. not a list"
    assert _md("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"


def test_a_tampered_transform_shows_as_failing(pipe: Pipeline) -> None:
    tamper_step_name(pipe.home, pipe.clean.log_index, "clean-but-not-really")
    report = build_report(f"blake3:{pipe.model_b3}", pipe.home)
    assert not report.ok
    assert report.failing == [pipe.clean.log_index]
    evidence = report.evidence[pipe.clean.log_index]
    assert evidence.status == "FAILED"
    assert evidence.problems
    assert "failed" in evidence.checks.values()
    assert report.evidence[pipe.merge.log_index].ok
    for text in (_text(to_html(report)), _md_text(to_markdown(report))):
        assert "Verification FAILED" in text
        assert f"record {pipe.clean.log_index}: FAILED" in text
        assert f"records {pipe.clean.log_index} do not verify" in text
    assert '<p class="status bad">' in to_html(report)


def test_no_split_marker_says_so(pipe: Pipeline) -> None:
    model = pipe.work / "other.bin"
    model.write_text("other weights")
    other = record_step(
        pipe.recorder,
        "train-other",
        inputs=[pipe.snap_train.attestation],
        outputs=[Artifact.from_path(model)],
        build_type=TRAINING_BUILD_TYPE,
    )
    report = build_report(other.log_index, pipe.home)
    [dataset] = report.datasets
    assert dataset.split is None
    # The gate decision on that commit is found though the training record does not name it.
    assert dataset.gates == (pipe.gate.vsa.log_index,)
    assert report.evidence[pipe.gate.vsa.log_index].ok
    text = _md_text(to_markdown(report))
    assert f"Validation and testing data: {NOT_MARKED}" in text


def test_an_artifact_input_marked_as_test_data_is_listed(pipe: Pipeline) -> None:
    """An input named by BLAKE3 (no attestation), marked through the ``splits`` parameter."""
    held_out = pipe.work / "data" / "val" / "held-out.txt"
    model = pipe.work / "tested.bin"
    model.write_text("tested weights")
    step = record_step(
        pipe.recorder,
        "train-and-test",
        inputs=[pipe.snap_train.attestation, Artifact.from_path(held_out)],
        outputs=[Artifact.from_path(model)],
        build_type=TRAINING_BUILD_TYPE,
        parameters={"splits": {"held-out.txt": "test"}},
    )
    report = build_report(step.log_index, pipe.home)
    splits = {d.log_index: d.split for d in report.datasets}
    assert splits == {pipe.snap_train.log_index: None, pipe.ingests["D"]: "test"}
    text = _md_text(to_markdown(report))
    section = text[text.index("4. Validation and testing data") :]
    assert "https://example.org/held-out | test" in section


def test_a_snapshot_target_is_its_own_dataset(pipe: Pipeline) -> None:
    report: AuditReport = build_report(f"provgate://demo/{pipe.snap_val.commit_id}", pipe.home)
    assert report.models == ()
    [dataset] = report.datasets
    assert dataset.log_index == pipe.snap_val.log_index
    assert dataset.sources == (pipe.ingests["D"],)
    assert dataset.gates == (pipe.gate.vsa.log_index,)
    assert "The target is not the output of a recorded step." in to_markdown(report)


def test_unknown_targets_are_refused(pipe: Pipeline) -> None:
    with pytest.raises(NotFoundError):
        build_report("blake3:" + "0" * 64, pipe.home)
    with pytest.raises(InputError):
        build_report("not a target", pipe.home)
