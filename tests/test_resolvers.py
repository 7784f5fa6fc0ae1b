"""prov_core.resolvers and the lineage walks that start from another system's URI.

The resolvers here are in-memory doubles of the resolver interface (a plain
function per scheme); the MLflow integration's tests load its real resolver
through the ``provgate.resolvers`` entry point.
"""

from __future__ import annotations

import pytest

from prov_core.errors import InputError, NotFoundError, ResolverError
from prov_core.lineage import open_lineage
from prov_core.resolvers import (
    BUILTIN_SCHEMES,
    installed_resolvers,
    resolve_uri,
    scheme_of,
)

from .conftest import Cli
from .web.pipeline import Pipeline, built


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("models:/clf/1", "models"),
        ("MODELS:/clf/1", "models"),
        ("runs:/abc/model", "runs"),
        ("wandb-artifact://x", "wandb-artifact"),
        ("provgate://demo/" + "a" * 64, None),
        ("lakefs://demo/main", None),
        ("provgate+log://origin/3", None),
        ("sha256:" + "a" * 64, None),
        ("BLAKE3:" + "a" * 64, None),
        ("12", None),
        ("a" * 64, None),
        ("C:\\models\\clf", None),  # a drive letter is not a scheme
        ("1models:/x", None),
    ],
)
def test_scheme_of(text: str, scheme: str | None) -> None:
    assert scheme_of(text) == scheme


def test_builtin_schemes_never_reach_a_resolver() -> None:
    called: list[str] = []
    for scheme in BUILTIN_SCHEMES:
        with pytest.raises(InputError, match="no scheme of its own"):
            resolve_uri(f"{scheme}:x", {scheme: lambda uri: called.append(uri) or "1"})
    assert called == []


def test_unknown_scheme_names_the_scheme_and_the_fix() -> None:
    with pytest.raises(InputError, match=r"'models'.*installed: runs:.*provgate\[mlflow\]"):
        resolve_uri("models:/clf/1", {"runs": lambda uri: "1"})


def test_no_resolver_is_installed_with_the_core_alone() -> None:
    if installed_resolvers():
        pytest.skip(f"resolvers installed in this environment: {sorted(installed_resolvers())}")
    with pytest.raises(InputError, match=r"installed: none.*provgate\[mlflow\]"):
        resolve_uri("models:/clf/1")


def test_resolver_errors_pass_through_and_others_are_wrapped() -> None:
    def missing(uri: str) -> str:
        raise NotFoundError(f"{uri}: no such model version")

    def broken(uri: str) -> str:
        raise ValueError("tracking server said 500")

    with pytest.raises(NotFoundError, match="no such model version"):
        resolve_uri("models:/clf/9", {"models": missing})
    with pytest.raises(ResolverError, match="models: resolver failed: ValueError") as exc:
        resolve_uri("models:/clf/1", {"models": broken})
    assert exc.value.scheme == "models"
    assert isinstance(exc.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("runs:/abc/model", "another resolver"),
        ("", "no usable target"),
        (7, "no usable target"),
        ("1" * 5000, "no usable target"),
    ],
)
def test_a_resolver_must_return_a_core_target(returned: object, message: str) -> None:
    with pytest.raises(ResolverError, match=message):
        resolve_uri("models:/clf/1", {"models": lambda uri: returned})  # type: ignore[arg-type,return-value]


# -- walks from a resolved URI, on a real lineage ---------------------------------


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    with built(tmp_path_factory.mktemp("resolvers")) as p:
        return p


def test_a_resolved_uri_walks_and_verifies_like_the_digest_it_names(pipeline: Pipeline) -> None:
    calls: list[str] = []

    def model(uri: str) -> str:
        calls.append(uri)
        return f"blake3:{pipeline.model_b3}"

    with open_lineage(pipeline.home, resolvers={"tracker": model}) as lineage:
        up = lineage.upstream("tracker:/clf/1")
        assert up.target == "tracker:/clf/1"
        assert up.roots == (pipeline.train,)
        assert {n.log_index for n in up.of_kind("ingest")} == set(pipeline.ingests.values())
        report = lineage.verify_chain("tracker:/clf/1")
        assert report.ok, report.problems
        assert report.target == "tracker:/clf/1"
        assert lineage.downstream("tracker:/clf/1").roots == (pipeline.train,)
    assert calls == ["tracker:/clf/1"]  # resolved once per Lineage, however often it is walked


def test_a_resolved_digest_no_record_names_is_not_found_naming_both(pipeline: Pipeline) -> None:
    with (
        open_lineage(
            pipeline.home, resolvers={"tracker": lambda uri: "sha256:" + "0" * 64}
        ) as lineage,
        pytest.raises(NotFoundError, match=r"tracker:/clf/2 resolves to sha256:0{64}: no record"),
    ):
        lineage.upstream("tracker:/clf/2")


def test_the_cli_names_the_integration_when_no_resolver_reads_the_scheme(cli: Cli) -> None:
    assert cli("init").code == 0
    if "models" in installed_resolvers():
        pytest.skip("a models: resolver is installed in this environment")
    for args in (("trace", "models:/clf/1"), ("verify", "--artifact", "models:/clf/1")):
        result = cli(*args)
        assert result.code == 2
        assert "'models:/clf/1' is not a lineage target" in result.err
        assert "models:/NAME/VERSION with provgate[mlflow]" in result.err
