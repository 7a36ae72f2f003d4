"""Connections to hosts: one reused connection per host, with bounded waits.

SSH goes through OpenSSH with connection multiplexing (one master connection per host for
the whole run), host keys verified unless the operator explicitly accepts unknown ones, and a
hard timeout on every command. Paramiko and local use testinfra's own backends; WinRM uses
the suite's backend, which keeps one shell per host.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import select
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import paramiko
import testinfra
import testinfra.host
from testinfra.backend.base import CommandResult
from testinfra.backend.paramiko import ParamikoBackend
from testinfra.backend.ssh import SshBackend

from hrw_preflight import defaults
from hrw_preflight.hosts.bounds import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DeadlinePassed,
    OutputTooLarge,
    read_bounded,
)
from hrw_preflight.hosts.errors import HostUnreachable
from hrw_preflight.hosts.targets import Target, split_ssh_args

__all__ = [
    "BoundedSshBackend",
    "ConnectOptions",
    "HostUnreachable",
    "close_host",
    "open_host",
    "remove_control_dir",
    "stop_masters",
]


@dataclass(frozen=True)
class ConnectOptions:
    """How to connect: timeouts and whether unknown SSH host keys may be accepted."""

    connect_timeout_s: int = defaults.CONNECT_TIMEOUT_S
    command_timeout_s: int = defaults.COMMAND_TIMEOUT_S
    accept_unknown_host_keys: bool = False
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES

    @property
    def host_deadline_s(self) -> float:
        """Return the wall-clock time one host may take in all: connecting, the probe's
        two commands (each bounded by the command timeout), closing, and 10 s of slack."""
        return self.connect_timeout_s + 2 * self.command_timeout_s + 10


class BoundedSshBackend(SshBackend):  # type: ignore[misc]
    """testinfra's OpenSSH backend with a timeout on every command, batch mode, and the ssh
    command line built as an argument vector.

    Why: testinfra waits forever for a command; a host that accepts the connection and
    then hangs must not hold up the run. Batch mode stops ssh from ever prompting. And
    testinfra runs the ssh command line through ``/bin/sh -c`` with the inventory's
    ``ansible_ssh_common_args`` pasted in, so ``$(...)`` in an inventory would run on the
    controller; here ssh is executed directly, with no shell between.
    """

    NAME = "ssh"

    def __init__(
        self,
        hostspec: str,
        command_timeout_s: int,
        extra_argv: list[str],
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(hostspec, **kwargs)
        self.command_timeout_s = command_timeout_s
        self.extra_argv = list(extra_argv)
        self.max_output_bytes = max_output_bytes

    def get_encoding(self) -> str:
        """Return "utf-8" without asking the host.

        Why: testinfra otherwise runs ``python3 -c 'import locale...'`` on the host the first
        time output is not ASCII, an extra remote command outside the probe's budget that
        may itself fail; the probes decode the output bytes themselves (UTF-8, see
        :func:`hrw_preflight.facts.linux.probe.decode_output`).
        """
        return "utf-8"

    def ssh_argv(self, command: str) -> list[str]:
        """Return the local ssh command's argument vector that runs ``command`` on the host.

        ``command`` is one argument, which ssh hands to the remote login shell, as testinfra
        does; ``--`` ends the options so that no host name can be read as one.
        """
        argv = ["ssh", *self.extra_argv]
        lowered = " ".join(self.extra_argv).lower()
        if self.ssh_config:
            argv += ["-F", self.ssh_config]
        if self.host.user:
            argv += ["-o", f"User={self.host.user}"]
        if self.host.port:
            argv += ["-o", f"Port={self.host.port}"]
        if self.ssh_identity_file:
            argv += ["-i", self.ssh_identity_file]
        if "connecttimeout" not in lowered:
            argv += ["-o", f"ConnectTimeout={self.timeout}"]
        if self.controlpersist and "controlmaster" not in lowered:
            argv += ["-o", "ControlMaster=auto", "-o", f"ControlPersist={self.controlpersist}s"]
            if self.controlpath and "controlpath" not in lowered:
                argv += ["-o", f"ControlPath={self.controlpath}"]
        return [*argv, "--", self.host.name, command]

    def run_ssh(self, command: str) -> CommandResult:
        """Run ``command`` on the host through ssh; raise RuntimeError when ssh itself failed
        (exit 255), as testinfra's backend does."""
        out = self.run_argv(self.ssh_argv(command))
        out.command = self.encode(command)
        if out.rc == 255:
            raise RuntimeError(out)
        return out

    def run_local(self, command: str, *args: str) -> CommandResult:
        """Refuse: every local command of this backend is an argument vector (run_argv)."""
        raise NotImplementedError("BoundedSshBackend runs ssh without a shell: use run_argv")

    def run_argv(self, argv: list[str]) -> CommandResult:
        """Run the local command ``argv`` (no shell); raise HostUnreachable if it outlives
        the timeout (on the clock, however slowly output trickles in), and OutputTooLarge
        once it has printed more than ``max_output_bytes``.

        The command runs in its own process group so that, on timeout, the ssh client is
        killed along with anything it started (a ProxyCommand), instead of holding the
        remote command for as long as the host stays silent.
        """
        encoded = [self.encode(a) for a in argv]
        with _RUNNING_LOCK:  # so that stop_masters sees every command it must end
            if _STOPPING.is_set():
                raise HostUnreachable("the run was interrupted before this command")
            proc = subprocess.Popen(
                encoded,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            _RUNNING.add(proc.pid)
        try:
            stdout, stderr = read_bounded(proc, self.command_timeout_s, self.max_output_bytes)
        except OutputTooLarge:
            _kill_group(proc)
            raise
        except DeadlinePassed:
            _kill_group(proc)
            raise HostUnreachable(
                f"no answer within {self.command_timeout_s} s (the host accepted the "
                "connection but the command did not finish; --hrw-command-timeout)"
            ) from None
        finally:
            _RUNNING.discard(proc.pid)
        return self.result(proc.returncode, b" ".join(encoded), stdout, stderr)


# Process groups of the ssh commands running now, so that an interrupted run can end them,
# and the flag that keeps new ones from starting once it does.
_RUNNING: set[int] = set()
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()


class _AcceptUnknown(paramiko.MissingHostKeyPolicy):
    """Accept a key the known_hosts files do not hold, without saving it
    (``--accept-unknown-host-keys``; a changed key is still refused by paramiko)."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        """Accept ``key`` for this connection only."""


class BoundedParamikoBackend(ParamikoBackend):  # type: ignore[misc]
    """testinfra's paramiko backend with host keys verified, Nagle off and a deadline on
    every command.

    Why: testinfra's version accepts any host key with a warning (no known_hosts), reads
    until the host closes the channel, so a host that hangs after login holds the run
    forever, and with Nagle on, each small request of a probe waits for the previous
    segment's acknowledgement.
    """

    NAME = "paramiko"

    def __init__(
        self,
        hostspec: str,
        command_timeout_s: int,
        accept_unknown_host_keys: bool = False,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(hostspec, **kwargs)
        self.command_timeout_s = command_timeout_s
        self.max_output_bytes = max_output_bytes
        self.accept_unknown_host_keys = accept_unknown_host_keys

    def known_hosts_files(self) -> list[str]:
        """Return the known_hosts files checked, as OpenSSH would read them: the ssh
        config's ``UserKnownHostsFile`` for this host (``--ssh-config``, else
        ``~/.ssh/config``) or ``~/.ssh/known_hosts``, then ``/etc/ssh/ssh_known_hosts``."""
        config_path = self.ssh_config or os.path.expanduser("~/.ssh/config")
        user_files = [os.path.expanduser("~/.ssh/known_hosts")]
        if os.path.isfile(config_path):
            lookup = paramiko.SSHConfig.from_path(config_path).lookup(self.host.name)
            named = lookup.get("userknownhostsfile")
            if named:
                user_files = [os.path.expanduser(p) for p in str(named).split()]
        return [*user_files, "/etc/ssh/ssh_known_hosts"]

    @functools.cached_property
    def client(self) -> paramiko.SSHClient:
        """Return the connected client; raise HostUnreachable, saying what to do, when the
        host's key is not in known_hosts or differs from the one there."""
        files = self.known_hosts_files()
        client = paramiko.SSHClient()
        for path in files:
            if os.path.isfile(path):
                try:
                    client.load_system_host_keys(path)
                except (OSError, paramiko.SSHException) as exc:
                    raise HostUnreachable(f"cannot read known_hosts file {path}: {exc}") from None
        client.set_missing_host_key_policy(
            _AcceptUnknown() if self.accept_unknown_host_keys else paramiko.RejectPolicy()
        )
        cfg: dict[str, Any] = {
            "hostname": self.host.name,
            "port": int(self.host.port) if self.host.port else 22,
            "username": self.host.user,
            "timeout": self.timeout,
            "password": self.host.password,
        }
        config_path = self.ssh_config or os.path.expanduser("~/.ssh/config")
        if os.path.isfile(config_path):
            config = paramiko.SSHConfig.from_path(config_path)
            self._load_ssh_config(client, cfg, config, os.path.dirname(config_path))
        if self.ssh_identity_file:
            cfg["key_filename"] = self.ssh_identity_file
        where = f"{self.host.name}:{cfg['port']}"
        try:
            client.connect(**cfg)
        except paramiko.BadHostKeyException as exc:
            raise HostUnreachable(
                f"the host key of {where} has CHANGED: it differs from the one in known_hosts "
                f"({exc.key.get_name()} {exc.key.get_fingerprint().hex()} received); if the "
                "host was rebuilt, verify and replace its known_hosts entry, else this may be "
                "a machine in the middle"
            ) from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" not in str(exc):
                raise
            raise HostUnreachable(
                f"the host key of {where} is not in known_hosts ({', '.join(files)}): add it "
                "after checking it (ssh-keyscan), or run with --accept-unknown-host-keys"
            ) from None
        return client

    def get_encoding(self) -> str:
        """Return "utf-8" without asking the host (see BoundedSshBackend.get_encoding)."""
        return "utf-8"

    def _exec_command(self, command: bytes) -> tuple[int, bytes, bytes]:
        transport = self.client.get_transport()
        if transport is None:
            raise HostUnreachable("the paramiko transport is not connected")
        if isinstance(transport.sock, socket.socket):  # not through a ProxyCommand
            with contextlib.suppress(OSError):
                transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        deadline = time.monotonic() + self.command_timeout_s
        chan = transport.open_session(timeout=self.command_timeout_s)
        try:
            if self.get_pty:
                chan.get_pty()
            chan.exec_command(command)
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            while True:
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                elif chan.exit_status_ready() and chan.eof_received:
                    return chan.recv_exit_status(), bytes(out), bytes(err)
                if len(out) + len(err) > self.max_output_bytes:
                    raise OutputTooLarge(self.max_output_bytes)
                left = deadline - time.monotonic()
                if left <= 0:  # checked on every turn: a trickle of output cannot stretch it
                    raise HostUnreachable(
                        f"no answer within {self.command_timeout_s} s (the host accepted "
                        "the connection but the command did not finish; "
                        "--hrw-command-timeout)"
                    )
                if not (chan.recv_ready() or chan.recv_stderr_ready()):
                    # The channel's pipe wakes select for output and end of file only (not
                    # for stderr or the exit status), so the wait is kept short.
                    select.select([chan], [], [], min(left, 0.05))
        finally:
            chan.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc``'s process group and reap it, giving up on its pipes after 5 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a detached grandchild still holds a pipe
        proc.kill()
        proc.wait()


def _control_dir_path() -> str | None:
    """Return this process's SSH control-socket folder, or None if it has made none."""
    if _CONTROL is not None and _CONTROL[0] == os.getpid():
        return _CONTROL[1]
    return None  # none yet, or the parent's (a forked child makes its own)


def _check_private(path: str) -> None:
    """Raise HostUnreachable unless ``path`` is a real folder of ours that only we can use.

    Why: whoever can enter the folder can connect to the master sockets in it and run
    commands on the hosts as the suite's login.
    """
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise HostUnreachable(f"SSH control-socket folder {path} is gone: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise HostUnreachable(
            f"SSH control-socket folder {path} is not private (owner uid {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):04o}; expected uid {os.geteuid()}, 0700): refusing "
            "to put SSH master sockets there"
        )


def _control_dir() -> str:
    """Return this process's private socket folder, made with mkdtemp (0700) on first use
    and checked on every use."""
    global _CONTROL
    with _CONTROL_LOCK:  # the probe process opens hosts from many threads at once
        path = _control_dir_path()
        if path is not None and not os.path.lexists(path):
            path = None  # removed (the end of a run in this process): make a new one
        if path is None:
            prefix = f"hrw-ssh-{os.getuid()}-"
            path = tempfile.mkdtemp(prefix=prefix, dir=tempfile.gettempdir())
            _CONTROL = (os.getpid(), path)
            atexit.register(remove_control_dir)
    _check_private(path)
    return path


# (pid, folder) of the process that made the folder: a forked child must not use or
# remove its parent's.
_CONTROL: tuple[int, str] | None = None
_CONTROL_LOCK = threading.Lock()


def stop_masters() -> None:
    """End this process's running ssh commands, ask its SSH masters to exit, and remove the
    socket folder.

    Why: an interrupted run ends its probe process mid-probe; without this, the masters it
    started would linger for ControlPersist seconds holding a connection to each host.
    """
    with _RUNNING_LOCK:
        _STOPPING.set()
        groups = list(_RUNNING)
    for group in groups:  # clients still running would start or hold masters
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    folder = _control_dir_path()
    if folder is None:
        return
    try:
        sockets = [os.path.join(folder, name) for name in os.listdir(folder)]
    except OSError:
        return
    for path in sockets:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={path}", "master"],
                capture_output=True,
                timeout=5,
                check=False,
            )
        # A client killed while it was becoming a master leaves its socket without a
        # listener; a master that did not answer loses its socket and expires on its own.
        with contextlib.suppress(OSError):
            os.unlink(path)
    remove_control_dir()


def remove_control_dir() -> None:
    """Remove this process's SSH control-socket folder once its masters are gone.

    Only an empty folder is removed: a master still running keeps its socket there. Once
    it is gone, the next connection in this process makes a new one.
    """
    global _CONTROL
    path = _control_dir_path()
    if path is not None:
        with contextlib.suppress(OSError):
            os.rmdir(path)
            _CONTROL = None  # a later connection makes a new one


def _name_tag(name: str) -> str:
    """Return a short, path-safe tag for an inventory host name (socket paths are short)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]


def _ssh_host(target: Target, options: ConnectOptions) -> testinfra.host.Host:
    spec = target.hostspec().split("://", 1)[1].split("?", 1)[0]
    extra = [
        *split_ssh_args(target.ssh_extra_args, f"host '{target.name}': ansible_ssh_common_args"),
        "-o",
        "BatchMode=yes",
        "-o",
        "ServerAliveInterval=10",
        "-o",
        "ServerAliveCountMax=3",
    ]
    if options.accept_unknown_host_keys:
        extra += ["-o", "StrictHostKeyChecking=accept-new"]
    backend = BoundedSshBackend(
        spec,
        command_timeout_s=options.command_timeout_s,
        extra_argv=extra,
        max_output_bytes=options.max_output_bytes,
        ssh_config=target.ssh_config,
        ssh_identity_file=target.identity_file,
        timeout=target.timeout or options.connect_timeout_s,
        # The inventory name is part of the path: two entries for one machine get a master
        # each, so closing one never cuts the other off mid-probe.
        controlpath=os.path.join(_control_dir(), f"{_name_tag(target.name)}-%C"),
        controlpersist=60,
        sudo=target.sudo,
        sudo_user=target.sudo_user,
    )
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


def _winrm_host(target: Target, options: ConnectOptions) -> testinfra.host.Host:
    from hrw_preflight.hosts.winrm_backend import WinRMBackend, WinRMSettings

    if target.password is None:
        raise HostUnreachable(
            f"no WinRM password for {target.name}: set ansible_password in the inventory or "
            "the HRW_WINRM_PASSWORD environment variable"
        )
    # A Receive long-polls for at most ``operation`` seconds and each HTTP wait is bounded by
    # ``read`` (> operation, as WinRM requires); both stay within the command timeout, so a
    # service that accepts the connection and then never answers costs at most that.
    command = max(2, options.command_timeout_s)
    operation = max(1, min(20, command // 2))
    read = operation + max(1, min(10, command // 2))
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
        read_timeout_s=read,
        operation_timeout_s=operation,
        command_timeout_s=command,
        max_output_bytes=options.max_output_bytes,
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
        spec = target.hostspec().split("://", 1)[1].split("?", 1)[0]
        backend = BoundedParamikoBackend(
            spec,
            options.command_timeout_s,
            accept_unknown_host_keys=options.accept_unknown_host_keys,
            max_output_bytes=options.max_output_bytes,
            **kwargs,
        )
        host = testinfra.host.Host(backend)
        backend.set_host(host)
        return host
    host = testinfra.get_host(target.hostspec(), **kwargs)
    # Set, so testinfra never runs a remote command to ask for it (see get_encoding above).
    host.backend._encoding = "utf-8"
    return host


def close_host(host: testinfra.host.Host) -> None:
    """Close the host's connection: stop the SSH master or delete the WinRM shell.

    Why: multiplexed SSH masters would otherwise linger for ControlPersist after the run.
    """
    backend = host.backend
    if isinstance(backend, BoundedSshBackend):
        spec = backend.host
        cmd = ["ssh", "-O", "exit", "-o", f"ControlPath={backend.controlpath}"]
        if backend.ssh_config:
            cmd += ["-F", backend.ssh_config]
        if spec.user:
            cmd += ["-o", f"User={spec.user}"]
        if spec.port:
            cmd += ["-o", f"Port={spec.port}"]
        subprocess.run([*cmd, "--", spec.name], capture_output=True, timeout=10, check=False)
    elif hasattr(backend, "close"):
        backend.close()
