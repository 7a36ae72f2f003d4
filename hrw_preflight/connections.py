"""Connections to hosts: one reused connection per host, with bounded waits.

SSH goes through OpenSSH with connection multiplexing (one master connection per host for
the whole run), host keys verified unless the operator explicitly accepts unknown ones, and a
hard timeout on every command. Paramiko and local use testinfra's own backends; WinRM uses
the suite's backend, which keeps one shell per host.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

import testinfra
import testinfra.host
from testinfra.backend.base import CommandResult
from testinfra.backend.ssh import SshBackend

from hrw_preflight.facts import HostUnreachable
from hrw_preflight.targets import Target

__all__ = ["BoundedSshBackend", "ConnectOptions", "HostUnreachable", "close_host", "open_host"]


@dataclass(frozen=True)
class ConnectOptions:
    """How to connect: timeouts and whether unknown SSH host keys may be accepted."""

    connect_timeout_s: int = 10
    command_timeout_s: int = 120
    accept_unknown_host_keys: bool = False


class BoundedSshBackend(SshBackend):  # type: ignore[misc]
    """testinfra's OpenSSH backend with a timeout on every command and batch mode.

    Why: testinfra waits forever for a command; a host that accepts the connection and
    then hangs must not hold up the run. Batch mode stops ssh from ever prompting.
    """

    NAME = "ssh"

    def __init__(self, hostspec: str, command_timeout_s: int, **kwargs: Any) -> None:
        super().__init__(hostspec, **kwargs)
        self.command_timeout_s = command_timeout_s

    def run_local(self, command: str, *args: str) -> CommandResult:
        """Run the local ssh command line; raise HostUnreachable if it outlives the timeout."""
        cmd = self.encode(self.quote(command, *args))
        try:
            proc = subprocess.run(
                cmd,
                shell=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.command_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise HostUnreachable(
                f"no answer within {self.command_timeout_s} s (the host accepted the "
                "connection but the command did not finish)"
            ) from exc
        return self.result(proc.returncode, cmd, proc.stdout, proc.stderr)


def _control_dir() -> str:
    path = os.path.join(tempfile.gettempdir(), f"hrw-ssh-{os.getuid()}-{os.getpid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _ssh_host(target: Target, options: ConnectOptions) -> testinfra.host.Host:
    spec = target.hostspec().split("://", 1)[1].split("?", 1)[0]
    extra = [
        target.ssh_extra_args,
        "-o BatchMode=yes",
        "-o ServerAliveInterval=10",
        "-o ServerAliveCountMax=3",
    ]
    if options.accept_unknown_host_keys:
        extra.append("-o StrictHostKeyChecking=accept-new")
    backend = BoundedSshBackend(
        spec,
        command_timeout_s=options.command_timeout_s,
        ssh_config=target.ssh_config,
        ssh_identity_file=target.identity_file,
        timeout=target.timeout or options.connect_timeout_s,
        # testinfra %-formats the ssh command line, so ssh's own %C token is written %%C.
        controlpath=os.path.join(_control_dir(), "%%C"),
        controlpersist=60,
        ssh_extra_args=" ".join(a for a in extra if a),
        sudo=target.sudo,
        sudo_user=target.sudo_user,
    )
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


def _winrm_host(target: Target, options: ConnectOptions) -> testinfra.host.Host:
    from hrw_preflight.winrm_backend import WinRMBackend, WinRMSettings

    if target.password is None:
        raise HostUnreachable(
            f"no WinRM password for {target.name}: set ansible_password in the inventory or "
            "the HRW_WINRM_PASSWORD environment variable"
        )
    settings = WinRMSettings(
        host=target.address,
        port=target.port or (5986 if target.winrm_scheme == "https" else 5985),
        user=target.user or "",
        password=target.password.reveal(),
        scheme=target.winrm_scheme,
        transport=target.winrm_transport,
        server_cert_validation=target.winrm_cert_validation,
        ca_trust_path=target.winrm_ca_trust_path,
        connect_timeout_s=options.connect_timeout_s,
        read_timeout_s=options.command_timeout_s + 10,
        operation_timeout_s=options.command_timeout_s,
    )
    backend = WinRMBackend(settings)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


def open_host(target: Target, options: ConnectOptions) -> testinfra.host.Host:
    """Return a testinfra Host for ``target``; nothing is sent until its first command."""
    if target.connection == "ssh":
        return _ssh_host(target, options)
    if target.connection == "winrm":
        return _winrm_host(target, options)
    kwargs = target.testinfra_kwargs()
    if target.connection == "paramiko":
        kwargs.setdefault("timeout", options.connect_timeout_s)
    return testinfra.get_host(target.hostspec(), **kwargs)


def close_host(host: testinfra.host.Host) -> None:
    """Close the host's connection: stop the SSH master or delete the WinRM shell.

    Why: multiplexed SSH masters would otherwise linger for ControlPersist after the run.
    """
    backend = host.backend
    if isinstance(backend, BoundedSshBackend):
        spec = backend.host
        path = str(backend.controlpath).replace("%%", "%")
        cmd = ["ssh", "-O", "exit", "-o", f"ControlPath={path}"]
        if backend.ssh_config:
            cmd += ["-F", backend.ssh_config]
        if spec.user:
            cmd += ["-o", f"User={spec.user}"]
        if spec.port:
            cmd += ["-o", f"Port={spec.port}"]
        subprocess.run([*cmd, spec.name], capture_output=True, timeout=10, check=False)
    elif hasattr(backend, "close"):
        backend.close()
