"""A model's digest as MLflow stores it, and MLflow errors mapped to provgate's.

Recording (``models:/<model_id>``) and resolving (``models:/NAME/VERSION``)
both digest the bytes MLflow hands out for the URI, downloaded into a
temporary directory: the same code path, so the same bytes give the same
digest and changed bytes a different one.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING

from prov_core.errors import InputError, NotFoundError, ResolverError

if TYPE_CHECKING:
    from mlflow.exceptions import MlflowException

    from prov_core.digest import TreeDigest

__all__ = ["mapped", "model_digest"]


def model_digest(uri: str) -> TreeDigest:
    """model_digest downloads what ``uri`` names (``models:/...``) and digests it as a tree.

    Raises :class:`NotFoundError` when MLflow knows no such model and
    :class:`ResolverError` when MLflow cannot answer.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from prov_core.digest import digest_path

    with tempfile.TemporaryDirectory(prefix="provgate-mlflow-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        except MlflowException as exc:
            raise mapped(exc, uri) from exc
        except OSError as exc:  # an artifact store on disk that lost the files
            raise NotFoundError(
                f"{uri}: MLflow lists the model but its files cannot be read: {exc}"
            ) from exc
        return digest_path(local)


def mapped(exc: MlflowException, what: str) -> InputError | ResolverError:
    """mapped turns an MlflowException about ``what`` into provgate's error for it:
    NotFoundError (no such model), InputError (a URI MLflow cannot read), else ResolverError."""
    code = getattr(exc, "error_code", "")
    message = getattr(exc, "message", None) or str(exc)
    if code == "RESOURCE_DOES_NOT_EXIST":
        return NotFoundError(f"{what}: MLflow has no such model: {message}")
    if code == "INVALID_PARAMETER_VALUE":
        return InputError(f"{what}: MLflow cannot read this model URI: {message}")
    return ResolverError(f"{what}: MLflow could not answer ({code or 'error'}): {message}")
