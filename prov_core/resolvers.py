"""Resolvers: lineage targets named in another system's terms (``models:/clf/1``).

:meth:`prov_core.lineage.Lineage.resolve` reads a few target forms itself (a
log index, ``provgate+log://``, a digest, a pinned ``provgate://`` or
``lakefs://`` snapshot). A URI of any other scheme goes to the *resolver*
registered for that scheme, which maps it to one of those forms. That is how
``provgate trace models:/clf/1`` works without the core importing MLflow: the
MLflow integration registers a resolver for ``models`` and ``runs``.

The contract, for implementers:

- A resolver is a callable ``resolve(uri: str) -> str`` registered under the
  entry-point group :data:`RESOLVER_GROUP`, named by the URI scheme it reads
  (lowercase, as in RFC 3986: a letter, then letters, digits, ``+ - .``)::

      [project.entry-points."provgate.resolvers"]
      models = "prov_mlflow.resolver:resolve"

- It returns a core target: ``"12"``, ``"provgate+log://ORIGIN/12"``,
  ``"sha256:HEX64"``, ``"blake3:HEX64"`` or a pinned snapshot URI. It does not
  return a URI for another resolver (no chains), and what it returns is read
  as strictly as anything a user types.
- Prefer a *content* digest to a pointer the other system stores (a tag, a
  metadata field): the digest of the bytes as they are stored now is found
  only if a signed record names those very bytes, so a swapped or edited
  artifact is not traced to someone else's record.
- It raises :class:`~prov_core.errors.NotFoundError` when the thing named does
  not exist, :class:`~prov_core.errors.InputError` when the URI is malformed,
  and :class:`~prov_core.errors.ResolverError` when the other system cannot
  answer. Anything else it raises is wrapped in a ``ResolverError``.
- It reads its own configuration (MLflow's ``MLFLOW_TRACKING_URI``, ...); the
  core passes nothing but the URI.

Resolvers are looked up only for schemes the core does not read itself, so
no plugin can change what a digest or a snapshot URI means.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from prov_core.errors import InputError, ProvgateError, ResolverError

__all__ = [
    "BUILTIN_SCHEMES",
    "RESOLVER_GROUP",
    "Resolver",
    "installed_resolvers",
    "resolve_uri",
    "scheme_of",
]

RESOLVER_GROUP: Final = "provgate.resolvers"
"""RESOLVER_GROUP is the entry-point group resolvers are registered in (name = URI scheme)."""

BUILTIN_SCHEMES: Final = frozenset({"provgate", "lakefs", "provgate+log", "blake3", "sha256"})
"""BUILTIN_SCHEMES are read by the core itself; no resolver is consulted for them."""

Resolver = Callable[[str], str]
"""Resolver maps a URI of its scheme to a core target (module docstring)."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_MAX_TARGET = 4096


def scheme_of(text: str) -> str | None:
    """scheme_of returns the lowercased URI scheme ``text`` starts with, or None.

    A single letter followed by ``:`` is not taken for a scheme (a Windows
    drive), nor is anything the core reads itself (:data:`BUILTIN_SCHEMES`).
    """
    m = _SCHEME.match(text)
    if m is None or len(m.group(1)) < 2:
        return None
    scheme = m.group(1).lower()
    return None if scheme in BUILTIN_SCHEMES else scheme


def installed_resolvers() -> dict[str, Resolver]:
    """installed_resolvers loads every resolver registered under :data:`RESOLVER_GROUP`.

    A registration that cannot be loaded (its distribution is broken) is
    reported by :func:`resolve_uri` when its scheme is asked for, not here.
    """
    from importlib.metadata import entry_points

    found: dict[str, Resolver] = {}
    for ep in entry_points(group=RESOLVER_GROUP):
        found.setdefault(ep.name.lower(), _lazy(ep.name, ep.value, ep.load))
    return found


def _lazy(scheme: str, value: str, load: Callable[[], object]) -> Resolver:
    def resolver(uri: str) -> str:
        try:
            fn = load()
        except Exception as exc:
            raise ResolverError(
                f"the resolver for {scheme}: ({value}) cannot be loaded: {exc}; reinstall the "
                "integration that provides it",
                scheme=scheme,
            ) from exc
        if not callable(fn):
            raise ResolverError(
                f"the resolver for {scheme}: ({value}) is not callable", scheme=scheme
            )
        return fn(uri)  # type: ignore[no-any-return]  # checked by resolve_uri

    return resolver


def resolve_uri(uri: str, resolvers: Mapping[str, Resolver] | None = None) -> str:
    """resolve_uri maps ``uri`` to a core target with the resolver of its scheme.

    ``resolvers`` defaults to :func:`installed_resolvers`. Raises
    :class:`InputError` when ``uri`` has no scheme a resolver could read or no
    resolver is installed for it; the resolver's own errors pass through
    (``NotFoundError``, ``InputError``, ``ResolverError``), anything else is
    wrapped in :class:`ResolverError`. A result that is itself a URI for a
    resolver is refused.
    """
    scheme = scheme_of(uri)
    if scheme is None:
        raise InputError(f"{uri!r} is not a URI for a resolver (it has no scheme of its own)")
    table = installed_resolvers() if resolvers is None else resolvers
    resolver = table.get(scheme)
    if resolver is None:
        known = ", ".join(f"{s}:" for s in sorted(table)) or "none"
        raise InputError(
            f"{uri!r}: no resolver for the URI scheme {scheme!r} is installed (installed: "
            f"{known}); install the provgate integration that reads it, e.g. "
            "pip install 'provgate[mlflow]' for models:/ and runs:/ URIs"
        )
    try:
        target = resolver(uri)
    except ProvgateError:
        raise
    except Exception as exc:
        raise ResolverError(
            f"{uri}: the {scheme}: resolver failed: {type(exc).__name__}: {exc}", scheme=scheme
        ) from exc
    if not isinstance(target, str) or not target.strip() or len(target) > _MAX_TARGET:
        raise ResolverError(
            f"{uri}: the {scheme}: resolver returned no usable target", scheme=scheme
        )
    if scheme_of(target.strip()) is not None:
        raise ResolverError(
            f"{uri}: the {scheme}: resolver returned {target!r}, a URI for another resolver; "
            "a resolver must return a log index, a digest or a pinned snapshot URI",
            scheme=scheme,
        )
    return target.strip()
