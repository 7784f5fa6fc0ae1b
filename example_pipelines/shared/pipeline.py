"""Data and model code of the reference pipeline (see ``__init__``); needs scikit-learn.

A support-ticket corpus from three sources (``data/``, licenses in SOURCES.md) is
cleaned and deduplicated, a small text classifier (TF-IDF + logistic regression) is
trained on it, and a retrieval index answers questions with the closest passages.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
BANNED_POLICY = Path(__file__).parents[2] / "examples" / "policies" / "banned-sources.toml"
"""BANNED_POLICY bans the ``books3.example`` source: in force after the model was trained."""


@dataclass(frozen=True)
class Source:
    """Source is one bundled input: its file, where it came from, on what terms."""

    name: str
    path: Path
    uri: str
    license: str
    method: str


SOURCES = (
    Source(
        "handbook",
        DATA / "handbook.csv",
        "https://docs.example.org/router-handbook",
        "CC-BY-4.0",
        "licensed-download",
    ),
    Source(
        "forum",
        DATA / "forum.csv",
        "https://forum.example.net/export/2026-01",
        "CC-BY-NC-4.0",
        "api-export",
    ),
    Source(
        "books",
        DATA / "books.csv",
        "https://books3.example/support-excerpts",
        "CC0-1.0",
        "web-scrape",
    ),
)

QUESTIONS = (
    "How do I reset my router?",
    "When is my invoice sent?",
    "Does the warranty cover water damage?",  # only the later-banned source knows
)

_FIELDS = ("id", "text", "label")
_SPACE = re.compile(r"\s+")


def read_rows(data: bytes) -> list[dict[str, str]]:
    """read_rows parses a corpus CSV (``id,text,label``)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    return [{k: (row.get(k) or "") for k in _FIELDS} for row in reader]


def _write_rows(path: Path, rows: Sequence[Mapping[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _normalize(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def clean(source: Path, out: Path, *, prefix: str = "") -> Path:
    """clean writes ``source``'s rows to ``out``: text normalized, empty rows dropped,
    duplicates (case-insensitive) kept once, ids prefixed with ``prefix``. Returns ``out``.

    One source per call, so each cleaned file descends from exactly one source: a
    passage can later be traced to its source alone (and blocked with it alone).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    rows = []
    for row in read_rows(source.read_bytes()):
        text = _normalize(row["text"])
        key = text.casefold()
        if not text or not row["label"] or key in seen:
            continue
        seen.add(key)
        rows.append({"id": f"{prefix}{row['id']}", "text": text, "label": row["label"]})
    _write_rows(out, rows)
    return out


def train(corpus: Mapping[str, bytes]) -> bytes:
    """train fits TF-IDF + logistic regression on every row of ``corpus`` (path -> CSV bytes)
    and returns the pickled scikit-learn pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rows = [r for data in corpus.values() for r in read_rows(data)]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000, random_state=0))
    model.fit([r["text"] for r in rows], [r["label"] for r in rows])
    return pickle.dumps(model)


def build_index(corpus: Mapping[str, bytes]) -> bytes:
    """build_index returns the retrieval index: every passage with the object it came from."""
    docs = [
        {"path": path, "id": r["id"], "text": r["text"], "label": r["label"]}
        for path, data in sorted(corpus.items())
        for r in read_rows(data)
    ]
    return json.dumps({"version": 1, "docs": docs}, indent=1).encode()


@dataclass(frozen=True)
class Hit:
    """Hit is one retrieved passage: its text, score and the snapshot object it came from."""

    text: str
    score: float
    path: str


@dataclass(frozen=True)
class Answer:
    """Answer is the model's label for the question and the passages it leans on."""

    question: str
    text: str
    label: str
    hits: tuple[Hit, ...]


def answer(
    question: str, index: bytes, model: bytes, *, k: int = 2, min_score: float = 0.2
) -> Answer:
    """answer retrieves the ``k`` closest passages (cosine over TF-IDF, at least ``min_score``)
    and labels the question with the model; the answer quotes the best passage.

    ``model`` must be the bytes :func:`train` produced in this pipeline (a pickle:
    never load one from elsewhere).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    docs = json.loads(index)["docs"]
    vectorizer = TfidfVectorizer().fit([d["text"] for d in docs])
    scores = cosine_similarity(
        vectorizer.transform([question]), vectorizer.transform([d["text"] for d in docs])
    )[0]
    ranked = sorted(range(len(docs)), key=lambda i: -scores[i])[:k]
    hits = tuple(
        Hit(docs[i]["text"], round(float(scores[i]), 6), docs[i]["path"])
        for i in ranked
        if scores[i] >= min_score
    )
    classifier = pickle.loads(model)  # noqa: S301 - this pipeline's own artifact (docstring)
    label = str(classifier.predict([question])[0])
    text = f"[{label}] {hits[0].text}" if hits else f"[{label}] I found nothing on that."
    return Answer(question, text, label, hits)


def answer_all(
    tracer: Any,
    model_ref: Any,
    snapshot_uri: str,
    index: bytes,
    model: bytes,
    *,
    warn: Callable[[str], None],
) -> list[dict[str, Any]]:
    """answer_all answers every question of :data:`QUESTIONS` under inference provenance.

    Each answer is traced (``prov_core.inference.InferenceTracer.trace``: the model,
    every retrieved passage by its path in the pinned snapshot ``snapshot_uri``, the
    answer); a blocked one is kept with its reasons and the log index of the recorded
    block, and ``warn`` is told. Returns one entry per question, as answers.json holds.
    """
    from prov_core.errors import InferenceBlocked

    results: list[dict[str, Any]] = []
    for question in QUESTIONS:
        reply = answer(question, index, model)
        entry: dict[str, Any] = {"question": question, "sources": [h.path for h in reply.hits]}
        try:
            with tracer.trace(model_ref, question) as t:
                for rank, hit in enumerate(reply.hits):
                    t.retrieved(
                        hit.text, rank=rank, score=hit.score, snapshot=f"{snapshot_uri}/{hit.path}"
                    )
                decision = t.answer(reply.text)
            entry.update(answer=reply.text, allowed=True, record=decision.attestation.log_index)
        except InferenceBlocked as blocked:
            record = blocked.decision.attestation if blocked.decision else None
            entry.update(
                answer=None,
                allowed=False,
                reasons=list(blocked.reasons),
                record=None if record is None else record.log_index,
            )
            warn(f"provgate blocked the answer to {question!r}: {blocked}")
        results.append(entry)
    return results
