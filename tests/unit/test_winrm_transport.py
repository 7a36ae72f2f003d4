"""Round trips between pywinrm and the lab's WinRM server, on loopback ports."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Literal

import pytest
import requests
import winrm.exceptions
from winrm.protocol import Protocol

from lab.winrm_emulator.config import ConfigError, HostConfig, load
from lab.winrm_emulator.engine_api import CommandOutput, ProcessInput
from lab.winrm_emulator.server import WinRMServer, create_server
from lab.winrm_emulator.testing import TlsFiles, echo_engine, loopback_host

USER = "hrwadmin"
PASSWORD = "Tr4nsport-Secret!"
REPO = Path(__file__).resolve().parents[2]


Auth = Literal["ntlm", "basic"]


def protocol(
    endpoint: str,
    transport: Auth,
    password: str = PASSWORD,
    ca_trust_path: str | None = None,
    message_encryption: Literal["auto", "never"] = "auto",
) -> Protocol:
    return Protocol(
        endpoint,
        transport=transport,
        username=USER,
        password=password,
        read_timeout_sec=10,
        operation_timeout_sec=5,
        proxy=None,
        ca_trust_path=ca_trust_path,  # type: ignore[arg-type]  # None: system CAs only
        message_encryption=message_encryption,
    )


def run_once(p: Protocol, command: str, args: list[str], stdin: bytes) -> tuple[bytes, bytes, int]:
    shell = p.open_shell()
    command_id = p.run_command(shell, command, args, console_mode_stdin=False)
    p.send_command_input(shell, command_id, stdin, end=True)
    result: tuple[bytes, bytes, int] = p.get_command_output(shell, command_id)
    p.cleanup_command(shell, command_id)
    p.close_shell(shell)
    return result


class Recorder:
    """A TCP relay that keeps every byte that passes, to inspect what is on the wire."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(
                target=self._pump, args=(client, upstream, self.to_server), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, self.to_client), daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, sink: bytearray) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    sink.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def test_ntlm_over_http_round_trips_with_every_body_encrypted(server: WinRMServer) -> None:
    recorder = Recorder(server.http_port)
    try:
        p = protocol(f"http://127.0.0.1:{recorder.port}/wsman", "ntlm")
        out, err, rc = run_once(p, "MARKER-COMMAND", ["MARKER-ARG"], b"MARKER-STDIN")
    finally:
        recorder.close()
    assert (out, err, rc) == (b"MARKER-COMMAND\nMARKER-STDIN", b"MARKER-ARG", 7)
    wire = bytes(recorder.to_server) + bytes(recorder.to_client)
    assert b'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"' in wire
    for secret_text in (
        b"MARKER",
        base64.b64encode(b"MARKER-STDIN"),
        b"Envelope",
        PASSWORD.encode(),
    ):
        assert secret_text not in wire
    assert (
        server.stats.get("encrypted_request") >= 6
    )  # create, command, send, receive, signal, delete
    assert server.stats.get("plain_request") == 0


def test_unencrypted_request_over_http_is_refused(server: WinRMServer) -> None:
    p = protocol(f"http://127.0.0.1:{server.http_port}/wsman", "ntlm", message_encryption="never")
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        p.open_shell()
    assert server.stats.get("unencrypted_rejected") == 1
    assert server.shells.created == 0


def test_ntlm_over_https_with_ca_trust_path(server: WinRMServer, tls: TlsFiles) -> None:
    p = protocol(
        f"https://127.0.0.1:{server.https_port}/wsman", "ntlm", ca_trust_path=str(tls.cert)
    )
    assert run_once(p, "whoami", [], b"in") == (b"whoami\nin", b"", 7)
    assert server.stats.get("ntlm_authenticated") >= 1
    assert server.stats.get("encrypted_request") == 0  # TLS protects it; no NTLM sealing


def test_ntlm_accepts_a_local_account_written_with_dot_domain(
    server: WinRMServer, tls: TlsFiles
) -> None:
    p = Protocol(
        f"https://127.0.0.1:{server.https_port}/wsman",
        transport="ntlm",
        username=f".\\{USER}",
        password=PASSWORD,
        ca_trust_path=str(tls.cert),
        proxy=None,
    )
    assert run_once(p, "ver", [], b"") == (b"ver\n", b"", 7)


def test_basic_over_https_is_accepted(server: WinRMServer, tls: TlsFiles) -> None:
    p = protocol(
        f"https://127.0.0.1:{server.https_port}/wsman", "basic", ca_trust_path=str(tls.cert)
    )
    assert run_once(p, "hostname", ["-s"], b"") == (b"hostname\n", b"-s", 7)
    assert server.stats.get("basic_authenticated") >= 1


def test_basic_over_http_is_refused(server: WinRMServer) -> None:
    p = protocol(f"http://127.0.0.1:{server.http_port}/wsman", "basic")
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        p.open_shell()
    assert server.stats.get("basic_over_http_rejected") == 1


@pytest.mark.parametrize("transport", ["ntlm", "basic"])
def test_wrong_password_gets_401(server: WinRMServer, tls: TlsFiles, transport: Auth) -> None:
    p = protocol(
        f"https://127.0.0.1:{server.https_port}/wsman",
        transport,
        password="wrong",
        ca_trust_path=str(tls.cert),
    )
    with pytest.raises(winrm.exceptions.InvalidCredentialsError):
        p.open_shell()
    assert server.stats.get("auth_failed") == 1
    assert server.shells.created == 0


def test_unauthenticated_request_lists_the_offered_schemes(
    server: WinRMServer, tls: TlsFiles
) -> None:
    plain = requests.post(f"http://127.0.0.1:{server.http_port}/wsman", data=b"<x/>", timeout=5)
    secure = requests.post(
        f"https://127.0.0.1:{server.https_port}/wsman",
        data=b"<x/>",
        timeout=5,
        verify=str(tls.cert),
    )
    assert plain.status_code == secure.status_code == 401
    assert plain.headers["WWW-Authenticate"] == "Negotiate"
    assert secure.headers["WWW-Authenticate"] == 'Negotiate, Basic realm="WSMAN"'


def test_unknown_shell_and_action_get_wsman_faults(server: WinRMServer, tls: TlsFiles) -> None:
    p = protocol(
        f"https://127.0.0.1:{server.https_port}/wsman", "ntlm", ca_trust_path=str(tls.cert)
    )
    with pytest.raises(winrm.exceptions.WSManFaultError) as missing:
        p.run_command("00000000-0000-0000-0000-000000000001", "dir")
    assert missing.value.wsman_fault_code == 2150858843
    assert "shell was not found" in missing.value.reason
    get_request = f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
        xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
        xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>
        <a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>
        <a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>
        <w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI>
        </s:Header><s:Body/></s:Envelope>"""
    with pytest.raises(winrm.exceptions.WSManFaultError) as unknown:
        p.send_message(get_request)
    assert unknown.value.fault_subcode == "a:ActionNotSupported"


def test_shell_outlives_connections_and_runs_many_commands(
    server: WinRMServer, tls: TlsFiles
) -> None:
    endpoint = f"https://127.0.0.1:{server.https_port}/wsman"
    first = protocol(endpoint, "ntlm", ca_trust_path=str(tls.cert))
    shell = first.open_shell()
    first.transport.close_session()
    second = protocol(endpoint, "basic", ca_trust_path=str(tls.cert))
    for n in range(3):
        command_id = second.run_command(shell, f"step{n}")
        assert second.get_command_output(shell, command_id) == (f"step{n}\n".encode(), b"", 7)
    second.close_shell(shell)
    assert (server.shells.created, server.shells.deleted, server.shells.commands_started) == (
        1,
        1,
        3,
    )


def test_receive_long_polls_until_a_slow_command_finishes(tls: TlsFiles) -> None:
    release = threading.Event()

    def slow_engine(
        command: str, arguments: list[str], stdin: ProcessInput, host: HostConfig
    ) -> CommandOutput:
        release.wait(10)
        return CommandOutput(b"late", b"", 0)

    with create_server(loopback_host(tls, USER, PASSWORD), slow_engine) as srv:
        p = Protocol(
            f"https://127.0.0.1:{srv.https_port}/wsman",
            transport="ntlm",
            username=USER,
            password=PASSWORD,
            ca_trust_path=str(tls.cert),
            read_timeout_sec=5,
            operation_timeout_sec=1,
            proxy=None,
        )
        shell = p.open_shell()
        command_id = p.run_command(shell, "slow")
        started = time.monotonic()
        with pytest.raises(winrm.exceptions.WinRMOperationTimeoutError):
            p.get_command_output_raw(shell, command_id)
        assert 0.9 <= time.monotonic() - started < 3
        release.set()
        assert p.get_command_output(shell, command_id) == (b"late", b"", 0)


def test_large_output_comes_in_several_receives(server: WinRMServer, tls: TlsFiles) -> None:
    p = protocol(
        f"https://127.0.0.1:{server.https_port}/wsman", "ntlm", ca_trust_path=str(tls.cert)
    )
    payload = os.urandom(300_000)
    out, _, rc = run_once(p, "big", [], payload)
    assert out == b"big\n" + payload and rc == 7
    assert server.stats.get("action:Receive") >= 3


def test_hang_profile_accepts_tls_and_never_answers(tls: TlsFiles) -> None:
    host = loopback_host(tls, USER, PASSWORD, profile={"winrm_hang_after_connect": True})
    with create_server(host, echo_engine) as srv:
        with socket.create_connection(("127.0.0.1", srv.http_port), timeout=0.5) as conn:
            conn.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            with pytest.raises(TimeoutError):
                conn.recv(1)
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(
                f"https://127.0.0.1:{srv.https_port}/wsman",
                data=b"",
                timeout=(2, 0.5),
                verify=str(tls.cert),
            )
        assert srv.stats.get("hung_connection") == 2


def test_ntlm_user_file_is_private_and_removed_at_stop(tls: TlsFiles) -> None:
    srv = create_server(loopback_host(tls, "fileuser", "F1le-pass"), echo_engine)
    srv.start()
    try:
        path = Path(os.environ["NTLM_USER_FILE"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert ":fileuser:F1le-pass" in path.read_text().splitlines()
    finally:
        srv.stop()
    assert not path.exists()
    assert "NTLM_USER_FILE" not in os.environ


def write_config(path: Path, tls: TlsFiles, **overrides: object) -> Path:
    raw: dict[str, object] = {
        "name": "windows-cfg",
        "address": "127.0.0.1",
        "http_port": 0,
        "https_port": 0,
        "tls_cert": str(tls.cert),
        "tls_key": str(tls.key),
        "username": USER,
        "password": PASSWORD,
        "workspace_id": "ws",
        "endpoints": {"agentsvc": "a", "jrds": "j", "oms": "o", "ods": "d"},
        "resolve": {"a": "10.213.0.2"},
        "proxy": None,
        "profile": {"platform": "windows"},
    }
    raw.update(overrides)
    path.write_text(json.dumps(raw))
    path.chmod(0o600)
    return path


def test_config_load_reads_a_good_file(tmp_path: Path, tls: TlsFiles) -> None:
    host = load(write_config(tmp_path / "h.json", tls))
    assert host.resolve == {"a": "10.213.0.2"} and host.profile == {"platform": "windows"}
    assert PASSWORD not in repr(host)


@pytest.mark.parametrize(
    ("overrides", "mode", "expected"),
    [
        ({"http_port": "5985"}, 0o600, "key 'http_port' must be a int, not str"),
        ({"password": 12345}, 0o600, "key 'password' must be a str, not int"),
        ({"endpoints": {"agentsvc": "a"}}, 0o600, "endpoints lacks jrds, oms"),
        ({}, 0o644, "too open, chmod 600 it"),
    ],
)
def test_config_load_names_what_to_fix(
    tmp_path: Path, tls: TlsFiles, overrides: dict[str, object], mode: int, expected: str
) -> None:
    path = write_config(tmp_path / "h.json", tls, **overrides)
    path.chmod(mode)
    with pytest.raises(ConfigError) as error:
        load(path)
    message = str(error.value)
    assert expected in message and "\n" not in message
    assert "12345" not in message and PASSWORD not in message


def test_config_load_rejects_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not valid JSON"):
        load(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_module_serves_until_sigterm(tmp_path: Path, tls: TlsFiles) -> None:
    https_port = free_port()
    config = write_config(tmp_path / "h.json", tls, http_port=free_port(), https_port=https_port)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.winrm_emulator",
            "--config",
            str(config),
            "--engine",
            "lab.winrm_emulator.testing:echo_engine",
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.post(
                    f"https://127.0.0.1:{https_port}/wsman", timeout=1, verify=str(tls.cert)
                )
                break
            except requests.exceptions.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"emulator did not start: {proc.communicate(timeout=5)[1]}")
                time.sleep(0.1)
        p = protocol(f"https://127.0.0.1:{https_port}/wsman", "ntlm", ca_trust_path=str(tls.cert))
        p.close_shell(p.open_shell())
        proc.send_signal(signal.SIGTERM)
        _, log_text = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "WinRM stopped" in log_text and "shell" in log_text
    assert PASSWORD not in log_text


def test_module_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "absent.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lab.winrm_emulator", "--config", str(missing)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot read host config" in proc.stderr


# --- WinRS options: stdin mode, cmd.exe, code page; the process starts at Command ---------


def _https(srv: WinRMServer, tls: TlsFiles) -> Protocol:
    return protocol(
        f"https://127.0.0.1:{srv.https_port}/wsman", "ntlm", ca_trust_path=str(tls.cert)
    )


def test_the_process_starts_at_the_command_request_before_any_stdin(tls: TlsFiles) -> None:
    started = threading.Event()

    def engine(
        command: str, arguments: list[str], stdin: ProcessInput, host: HostConfig
    ) -> CommandOutput:
        started.set()
        return CommandOutput(stdin.read_stdin(), b"", 0)

    with create_server(loopback_host(tls, USER, PASSWORD), engine) as srv:
        p = _https(srv, tls)
        shell = p.open_shell()
        command_id = p.run_command(shell, "findstr", ["x"], console_mode_stdin=False)
        assert started.wait(5), "the process did not start before stdin was sent"
        p.send_command_input(shell, command_id, b"piped", end=True)
        assert p.get_command_output(shell, command_id) == (b"piped", b"", 0)
        p.close_shell(shell)


def test_console_mode_stdin_reads_lines_through_the_consoles_254_character_buffer(
    tls: TlsFiles,
) -> None:
    line = b"A" * 300 + b"\r\n" + b"tail"
    with create_server(loopback_host(tls, USER, PASSWORD), echo_engine) as srv:
        p = _https(srv, tls)
        shell = p.open_shell()
        outputs = []
        for console in (True, False):
            command_id = p.run_command(shell, "more", [], console_mode_stdin=console)
            p.send_command_input(shell, command_id, line, end=True)
            outputs.append(p.get_command_output(shell, command_id)[0])
        p.close_shell(shell)
    assert outputs[0] == b"more\n" + b"A" * 254 + b"\r\ntail"
    assert outputs[1] == b"more\n" + line
    assert (srv.stats.get("stdin:console"), srv.stats.get("stdin:pipe")) == (1, 1)


def test_the_probe_needs_pipe_stdin_and_the_backend_sends_it(tls: TlsFiles) -> None:
    """The probe's parameter line is longer than a console line: console mode would cut it."""
    from hrw_preflight.facts.params import ProbeParams
    from hrw_preflight.facts.windows.clixml import decode_stderr
    from hrw_preflight.facts.windows.probe import build_invocation
    from hrw_preflight.hosts.winrm_backend import WinRMBackend, WinRMSettings
    from lab.winrm_emulator.engine import run_command

    command, stdin = build_invocation(ProbeParams(connect_timeout_s=0.2), "HRW" + "5a" * 16)
    assert len(stdin.split(b"\r\n", 1)[0]) > 254
    host = loopback_host(tls, USER, PASSWORD)
    with create_server(host, run_command) as srv:
        p = _https(srv, tls)
        shell = p.open_shell(codepage=65001)
        command_id = p.run_command(shell, command)  # pywinrm's default: console stdin
        p.send_command_input(shell, command_id, stdin, end=True)
        out, err, rc = p.get_command_output(shell, command_id)
        p.close_shell(shell)
        assert rc == 1 and out == b"" and "FromBase64String" in decode_stderr(err)
        settings = WinRMSettings(
            host="127.0.0.1",
            port=srv.https_port,
            user=USER,
            password=PASSWORD,
            ca_trust_path=str(tls.cert),
        )
        backend = WinRMBackend(settings)
        try:
            result = backend.run(command, stdin=stdin)
        finally:
            backend.close()
        assert result.stdout_bytes.startswith(b"HRW" + b"5a" * 16 + b" BEGIN service")
        assert srv.stats.get("stdin:pipe") == 1


def test_skip_cmd_shell_leaves_no_cmd_exe_for_its_builtins(tls: TlsFiles) -> None:
    from lab.winrm_emulator.engine import run_command

    with create_server(loopback_host(tls, USER, PASSWORD), run_command) as srv:
        p = _https(srv, tls)
        shell = p.open_shell()
        with pytest.raises(winrm.exceptions.WSManFaultError) as fault:
            p.run_command(shell, "echo hi", skip_cmd_shell=True)
        assert fault.value.wsman_fault_code == 2147942402
        assert "cannot find the file specified" in fault.value.reason
        command_id = p.run_command(shell, "hostname", skip_cmd_shell=True)
        assert p.get_command_output(shell, command_id)[0] == b"windows-test\r\n"
        command_id = p.run_command(shell, "echo hi")
        assert p.get_command_output(shell, command_id)[0] == b"hi\r\n"
        p.close_shell(shell)


@pytest.mark.parametrize(
    ("codepage", "expected"), [(437, b"caf\x82\r\n"), (65001, b"caf\xc3\xa9\r\n")]
)
def test_output_is_written_in_the_shells_code_page(
    tls: TlsFiles, codepage: int, expected: bytes
) -> None:
    from lab.winrm_emulator.engine import run_command

    with create_server(loopback_host(tls, USER, PASSWORD), run_command) as srv:
        p = _https(srv, tls)
        shell = p.open_shell(codepage=codepage)
        command_id = p.run_command(shell, "echo café")
        assert p.get_command_output(shell, command_id)[0] == expected
        p.close_shell(shell)
        with pytest.raises(winrm.exceptions.WSManFaultError):
            p.open_shell(codepage=12345)
