"""Free loopback ports for the servers that tests and benchmarks start (the OS picks them)."""

from __future__ import annotations

import socket


def free_tcp_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
