"""Whether this host can listen on the IPv6 loopback (some containers have IPv6 turned off)."""

from __future__ import annotations

import socket

import pytest


def skip_without_ipv6_loopback() -> None:
    """Skip the calling test where ``::1`` cannot be bound."""
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("this host has no IPv6 loopback")
