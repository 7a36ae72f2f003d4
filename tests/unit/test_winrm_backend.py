"""The suite's WinRM backend against the lab's WinRM server, on loopback ports."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import testinfra.host

from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.winrm_backend import WinRMBackend, WinRMError, WinRMSettings
from lab.winrm_emulator.config import HostConfig
from lab.winrm_emulator.engine_api import CommandOutput, ProcessInput
from lab.winrm_emulator.server import WinRMServer, create_server
from lab.winrm_emulator.testing import TlsFiles, echo_engine, loopback_host

USER = "hrwadmin"
PASSWORD = "B4ckend-Secret!"


def https_settings(server: WinRMServer, tls: TlsFiles, **changes: object) -> WinRMSettings:
    settings = WinRMSettings(
        host="127.0.0.1",
        port=server.https_port,
        user=USER,
        password=PASSWORD,
        ca_trust_path=str(tls.cert),
        connect_timeout_s=2,
        read_timeout_s=10,
        operation_timeout_s=5,
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


@pytest.fixture
def backend(server: WinRMServer, tls: TlsFiles) -> Iterator[WinRMBackend]:
    winrm_backend = WinRMBackend(https_settings(server, tls))
    yield winrm_backend
    winrm_backend.close()


def test_one_shell_serves_every_command_of_the_run(
    backend: WinRMBackend, server: WinRMServer
) -> None:
    results = [backend.run("echo %s", word) for word in ("one", "two words", 'say "hi"')]
    assert [r.stdout_bytes for r in results] == [
        b"echo one\n",
        b'echo "two words"\n',
        b'echo "say \\"hi\\""\n',
    ]
    assert all(r.rc == 7 for r in results)
    assert backend.commands_run == 3
    assert (server.shells.created, server.shells.commands_started) == (1, 3)
    backend.close()
    assert server.shells.deleted == 1 and server.shells.open_count == 0
    assert backend.shell_id is None


def test_stdin_reaches_the_command_whole(backend: WinRMBackend) -> None:
    script = bytes(range(256)) * 1000  # larger than one Send envelope
    result = backend.run("powershell -NoProfile -EncodedCommand AAAA", stdin=script)
    assert result.stdout_bytes == b"powershell -NoProfile -EncodedCommand AAAA\n" + script


def test_empty_stdin_is_sent_and_closed(backend: WinRMBackend) -> None:
    assert backend.run("type", stdin=b"").stdout_bytes == b"type\n"


def test_works_as_a_testinfra_host(backend: WinRMBackend) -> None:
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    # The echo engine exits 7, so expect that code rather than testinfra's default 0.
    assert host.run_expect([7], "hostname").stdout == "hostname\n"
    assert host.run("whoami %s", "a b").stdout == 'whoami "a b"\n'


def test_ntlm_over_http_is_encrypted(server: WinRMServer, tls: TlsFiles) -> None:
    backend = WinRMBackend(https_settings(server, tls, scheme="http", port=server.http_port))
    try:
        assert backend.run("dir", stdin=b"x").stdout_bytes == b"dir\nx"
    finally:
        backend.close()
    assert server.stats.get("encrypted_request") >= 5
    assert server.stats.get("plain_request") == 0


class SlowEnviron(dict[str, str]):
    """os.environ whose writes take a while: widens the window in which requests' set-then-
    delete of ``no_proxy`` from one thread meets another's, as a loaded controller does."""

    writes = 0

    def __setitem__(self, key: str, value: str) -> None:
        SlowEnviron.writes += 1
        time.sleep(0.005)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        time.sleep(0.005)
        super().__delitem__(key)


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_hosts_opened_at_once_do_not_race_on_the_environment(
    server: WinRMServer, tls: TlsFiles, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: requests writes and deletes os.environ["no_proxy"] around each request it
    # sends; eight hosts at once failed with "KeyError: 'no_proxy'".
    environ = SlowEnviron({k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
    monkeypatch.setattr(os, "environ", environ)
    port = server.https_port if scheme == "https" else server.http_port
    errors: list[str] = []

    def one(n: int) -> None:
        backend = WinRMBackend(https_settings(server, tls, scheme=scheme, port=port))
        try:
            for i in range(3):
                assert backend.run(f"c{n}-{i}").stdout_bytes.strip() == f"c{n}-{i}".encode()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            backend.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert "no_proxy" not in environ  # left as it was found


def test_two_threads_never_share_the_shell_at_once(tls: TlsFiles) -> None:
    lock = threading.Lock()
    running = 0
    overlap = 0

    def counting_engine(
        command: str, arguments: list[str], stdin: ProcessInput, host: HostConfig
    ) -> CommandOutput:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap = max(overlap, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return CommandOutput(command.encode(), b"", 0)

    with create_server(loopback_host(tls, USER, PASSWORD), counting_engine) as srv:
        backend = WinRMBackend(https_settings(srv, tls))
        outputs: list[bytes] = []

        def worker(tag: str) -> None:
            for n in range(4):
                outputs.append(backend.run(f"{tag}{n}").stdout_bytes)

        threads = [threading.Thread(target=worker, args=(t,)) for t in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        backend.close()
        assert sorted(outputs) == sorted(f"{t}{n}".encode() for t in "ab" for n in range(4))
        assert overlap == 1
        assert srv.shells.created == 1 and backend.commands_run == 8


def test_wrong_password_is_a_clear_error_without_the_password(
    server: WinRMServer, tls: TlsFiles
) -> None:
    backend = WinRMBackend(https_settings(server, tls, password="Wr0ng-Guess!"))
    with pytest.raises(WinRMError) as error:
        backend.run("hostname")
    assert error.value.cause == "auth"
    message = str(error.value)
    assert f"127.0.0.1:{server.https_port}" in message and "'hrwadmin'" in message
    assert "rejected (HTTP 401" in message
    assert "Wr0ng-Guess!" not in message and "Wr0ng-Guess!" not in repr(backend)
    assert backend.commands_run == 0


def test_untrusted_certificate_is_a_clear_error(server: WinRMServer, tls: TlsFiles) -> None:
    backend = WinRMBackend(https_settings(server, tls, ca_trust_path=None))
    with pytest.raises(WinRMError) as error:
        backend.run("hostname")
    assert error.value.cause == "tls"
    assert str(error.value).startswith(f"127.0.0.1:{server.https_port}: TLS verification failed (")
    assert "self-signed certificate" in str(error.value)
    assert server.shells.created == 0


def test_ignoring_certificate_validation_connects(server: WinRMServer, tls: TlsFiles) -> None:
    backend = WinRMBackend(
        https_settings(server, tls, ca_trust_path=None, server_cert_validation="ignore")
    )
    try:
        assert backend.run("ver").rc == 7
    finally:
        backend.close()


def test_refused_connection_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = WinRMBackend(WinRMSettings(host="127.0.0.1", port=port, user=USER, password="x"))
    with pytest.raises(WinRMError) as error:
        backend.run("hostname")
    assert error.value.cause == "refused"
    assert str(error.value) == (
        f"127.0.0.1:{port}: connection refused; is WinRM listening on that port?"
    )


def test_hanging_server_fails_within_the_read_timeout(tls: TlsFiles) -> None:
    host = loopback_host(tls, USER, PASSWORD, profile={"winrm_hang_after_connect": True})
    with create_server(host, echo_engine) as srv:
        backend = WinRMBackend(
            https_settings(srv, tls, connect_timeout_s=1, read_timeout_s=1.5, operation_timeout_s=1)
        )
        started = time.monotonic()
        with pytest.raises(WinRMError) as error:
            backend.run("hostname")
        elapsed = time.monotonic() - started
    assert error.value.cause == "read-timeout"
    assert "sent no answer within 1.5s" in str(error.value)
    assert 1.4 <= elapsed < 4


def test_lost_shell_is_a_fault_and_the_next_command_opens_a_new_one(
    backend: WinRMBackend, server: WinRMServer
) -> None:
    backend.run("first")
    assert server.shells.delete(backend.shell_id)
    with pytest.raises(WinRMError) as error:
        backend.run("second")
    assert error.value.cause == "fault"
    assert "2150858843" in str(error.value) and "shell was not found" in str(error.value)
    assert backend.run("third").stdout_bytes == b"third\n"
    assert server.shells.created == 2


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"transport": "basic", "scheme": "http"}, "basic auth sends the password in clear"),
        ({"scheme": "ftp"}, "scheme 'ftp' unknown"),
        ({"transport": "digest"}, "transport 'digest' unknown"),
        ({"read_timeout_s": 5, "operation_timeout_s": 5}, "must exceed operation_timeout_s"),
        ({"port": 0}, "outside 1..65535"),
        ({"ca_trust_path": "/nonexistent/ca.pem"}, "does not exist"),
    ],
)
def test_bad_settings_get_one_clear_line(changes: dict[str, object], expected: str) -> None:
    values: dict[str, object] = {
        "host": "win1",
        "port": 5986,
        "user": USER,
        "password": PASSWORD,
        **changes,
    }
    with pytest.raises(ConfigError) as error:
        WinRMSettings(**values)  # type: ignore[arg-type]
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert PASSWORD not in str(error.value)


def test_settings_repr_hides_the_password() -> None:
    settings = WinRMSettings(host="win1", port=5986, user=USER, password=PASSWORD)
    assert PASSWORD not in repr(settings)
    assert settings.endpoint == "https://win1:5986/wsman"
