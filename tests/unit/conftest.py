"""Fixtures shared by the WinRM transport and backend tests: a throwaway certificate and a
loopback WinRM server with the echo engine, for the test module's USER and PASSWORD."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.winrm_emulator.server import WinRMServer, create_server
from lab.winrm_emulator.testing import TlsFiles, echo_engine, loopback_host, throwaway_tls


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    """Return a self-signed certificate and key for 127.0.0.1."""
    return throwaway_tls(tmp_path)


@pytest.fixture
def server(tls: TlsFiles, request: pytest.FixtureRequest) -> Iterator[WinRMServer]:
    """Yield a running WinRM server on loopback accepting the module's USER and PASSWORD."""
    user, password = request.module.USER, request.module.PASSWORD
    with create_server(loopback_host(tls, user, password), echo_engine) as running:
        yield running
