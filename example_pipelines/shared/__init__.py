"""The reference pipeline's data and model code, shared by every orchestrator's module.

Orchestrator-neutral: plain functions over files and bytes, and ``answer_all``, which
answers the questions under provgate's (orchestrator-neutral) inference tracer.
Each orchestrator module (``example_pipelines/dagster_pipeline.py``, ...) wires them
as assets or tasks, and provgate records what they read and wrote:

    ingest (three sources) -> clean + dedupe -> snapshot -> train (gated)
                                                         -> retrieval index
                                              model + index -> answers (inference provenance)
"""

from example_pipelines.shared.pipeline import (
    BANNED_POLICY,
    QUESTIONS,
    SOURCES,
    Answer,
    Hit,
    Source,
    answer,
    answer_all,
    build_index,
    clean,
    read_rows,
    train,
)

__all__ = [
    "BANNED_POLICY",
    "QUESTIONS",
    "SOURCES",
    "Answer",
    "Hit",
    "Source",
    "answer",
    "answer_all",
    "build_index",
    "clean",
    "read_rows",
    "train",
]
