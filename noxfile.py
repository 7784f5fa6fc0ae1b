"""Test sessions, one environment each: core, dagster, airflow, prefect, mlflow, wandb, hf.

Airflow 3.3 and Prefect 3.9 cannot share an environment (their FastAPI ranges
do not overlap), so every orchestrator gets its own. Environments are built
with uv and byte-compiled: imports are 2-3x slower without .pyc files.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["core", "dagster", "airflow", "prefect", "mlflow", "wandb", "hf"]
nox.options.error_on_missing_interpreters = True

os.environ.setdefault("UV_COMPILE_BYTECODE", "1")

# Tests of a session run with the session's own interpreter; pass through the
# switch that turns "skipped: service missing" into a failure in CI.
_PASSTHROUGH = ("PROVGATE_REQUIRE_SERVICES", "PROVGATE_VENDOR_DIR")


def _env() -> dict[str, str]:
    return {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}


def _pytest(session: nox.Session, *paths: str) -> None:
    args = session.posargs or list(paths)
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *args, env=_env())


@nox.session
def core(session: nox.Session) -> None:
    """The core: lint, types, and every test under tests/."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "ruff", "check", ".")
    session.run("python", "-m", "ruff", "format", "--check", ".")
    session.run("python", "-m", "mypy")
    _pytest(session, "tests", "-n", "2")


@nox.session
def dagster(session: nox.Session) -> None:
    """The Dagster adapter, with Dagster installed for real."""
    session.install("-e", ".", "-e", "integrations/dagster[test]")
    _pytest(session, "integrations/dagster/tests")


@nox.session
def airflow(session: nox.Session) -> None:
    """The Airflow adapter, with Airflow 3.3 installed for real."""
    session.install("-e", ".", "-e", "integrations/airflow[test]")
    _pytest(session, "integrations/airflow/tests")


@nox.session
def prefect(session: nox.Session) -> None:
    """The Prefect adapter, with Prefect 3.9 installed for real."""
    session.install("-e", ".", "-e", "integrations/prefect[test]")
    _pytest(session, "integrations/prefect/tests")


@nox.session
def mlflow(session: nox.Session) -> None:
    """The MLflow integration, against a real local tracking store and registry (SQLite)."""
    session.install("-e", ".", "-e", "integrations/mlflow[test]")
    _pytest(session, "integrations/mlflow/tests")


@nox.session
def wandb(session: nox.Session) -> None:
    """The Weights & Biases integration, with wandb in offline mode and no network."""
    session.install("-e", ".", "-e", "integrations/wandb[test]")
    _pytest(session, "integrations/wandb/tests")


@nox.session
def hf(session: nox.Session) -> None:
    """Hugging Face datasets (prov_hf), with datasets installed for real, offline."""
    session.install("-e", ".", "-e", "integrations/hf[test]")
    _pytest(session, "integrations/hf/tests")
