"""Every connection and name lookup beyond loopback, seen through a Python audit hook.

The experiment-tracker integrations' tests (MLflow, W&B; imported as
``tests.network_audit``) install one per process and fail any test that
reached beyond loopback (or a Unix socket), naming the address.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")


class NetworkAudit:
    """NetworkAudit records non-loopback ``socket.connect`` and ``socket.getaddrinfo`` calls.

    Creating one adds an audit hook to the process, which cannot be removed:
    create one per process (a conftest module does).
    """

    def __init__(self) -> None:
        self.seen: list[str] = []
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple) and not str(address[0]).startswith(LOOPBACK):
                self.seen.append(f"connect {address!r}")
        elif event == "socket.getaddrinfo":
            host = args[0]
            if host is not None and not str(host).startswith(LOOPBACK):
                self.seen.append(f"getaddrinfo {host!r}")

    @contextmanager
    def none_beyond_loopback(self) -> Iterator[None]:
        """none_beyond_loopback fails (AssertionError) if the block reached beyond loopback."""
        before = len(self.seen)
        yield
        beyond = self.seen[before:]
        # (spelled out: pytest rewrites the asserts of test modules and conftests, not this)
        assert not beyond, f"network use outside loopback: {', '.join(beyond)}"
