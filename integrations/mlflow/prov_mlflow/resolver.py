"""``provgate trace models:/NAME/VERSION``: the resolver for the ``models`` URI scheme.

Registered under the ``provgate.resolvers`` entry point (see
:mod:`prov_core.resolvers` for the contract). MLflow's own configuration
says where to look (``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``). Every
form MLflow reads is accepted: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``
and ``models:/<model_id>``.

The model's files are downloaded and digested (:func:`~prov_mlflow._models.model_digest`)
and the target is ``sha256:`` of that tree: the training record whose output
is exactly these bytes, whatever tags the run or the model carry. Changed
bytes in the artifact store are therefore traced to nothing (not found),
never to the record of the model they replaced.
"""

from __future__ import annotations

from prov_mlflow._models import model_digest

__all__ = ["resolve"]


def resolve(uri: str) -> str:
    """resolve maps a ``models:/`` URI to ``sha256:<the model's tree digest>``."""
    return f"sha256:{model_digest(uri).sha256_subject}"
