"""A simulated Linux Hybrid Runbook Worker: namespaces, its own files, sshd, agent processes.

Each host runs as ``ip netns exec hrw-<name> taskset -c <cpus> unshare --mount --pid --uts
--fork --kill-child --mount-proc /bin/sh init.sh``. ``init.sh`` bind-mounts the host's own
account files, /etc/hosts, agent trees and fake /proc files over the shared system (the mount
namespace keeps that private), starts a real OpenSSH server and the agent processes, then
execs ``hrw-idle --init`` to reap children as the namespace's PID 1.

The agent and worker processes are ``hrw-idle`` (lab/idle.c) re-executed under the real
command line (``python .../main.py ...``), started with ``setpriv`` as the profile's user:
``ps`` and /proc/PID/cmdline show exactly what a real worker shows, at a few hundred KB each.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from lab.agent_tree import Process, build_agent_tree, group_lines, host_users, process_plan
from lab.agent_tree import user_by_name as find_user
from lab.context import LabContext
from lab.extension_tree import (
    build_extension_tree,
    extension_processes,
    identity_command,
    systemctl_script,
)
from lab.fleet import AZURE_ADDRESS, Host
from lab.host_sysinfo import cpu_list, write_sysinfo
from lab.openssl_standin import REAL_OPENSSL, standin_script
from lab.spawn import spawn_logged
from lab.sshkeys import write_keypair

# The guest agent's folder. It is bound over from each host's own tree; the machine needs an
# empty folder there to bind onto, which the lab makes if it is missing (see prepare).
WAAGENT = "/var/lib/waagent"
REPO_ROOT = Path(__file__).resolve().parents[1]

BIND_DIRS = ("/opt", "/etc/opt", "/var/opt", "/home", "/root", WAAGENT)


# What sshd runs instead of a client's command, by the profile's ``ssh_session``.
# close-mid-probe: the facts command gets the first line of its output, then the connection
# is dropped by killing this session's sshd (the nearest sshd ancestor), as a host that
# reboots or a firewall that cuts the flow would.
SESSION_SCRIPTS = {
    "hang": "#!/bin/sh\n# ssh_session: hang (the command never finishes)\nexec sleep 86400\n",
    # flood: the facts command prints 600 MB (as a host whose login prints without end would).
    "flood": '#!/bin/sh\n# ssh_session: flood\ncase "$SSH_ORIGINAL_COMMAND" in\n'
    "  *hrw-facts*) exec head -c 600000000 /dev/zero ;;\n"
    '  *) exec /bin/sh -c "$SSH_ORIGINAL_COMMAND" ;;\nesac\n',
    "close-mid-probe": """#!/bin/sh
# ssh_session: close-mid-probe
case "$SSH_ORIGINAL_COMMAND" in
  *hrw-facts*)
    printf '@@HRW-FILE /etc/opt/microsoft/omsagent/conf/omsadmin.conf\\n'
    pid=$$
    while [ "$pid" -gt 1 ]; do
      case "$(cat /proc/$pid/comm)" in sshd*) kill -9 "$pid"; exit 0 ;; esac
      pid=$(cut -d' ' -f4 /proc/$pid/stat)
    done ;;
  *) exec /bin/sh -c "$SSH_ORIGINAL_COMMAND" ;;
esac
""",
}


def sshd_config(host_dir: Path, address: str, session: str = "normal") -> str:
    """Return the host's sshd_config: the lab key only, no passwords, no PAM.

    ``session`` (the profile's ``ssh_session``) other than ``normal`` makes sshd run the
    matching script of :data:`SESSION_SCRIPTS` in place of every command.
    """
    force = [f"ForceCommand /bin/sh {host_dir}/ssh/session.sh"] if session != "normal" else []
    return "\n".join(
        [
            "# sshd of a lab host (lab/linux_host.py)",
            f"ListenAddress {address}",
            "Port 22",
            f"HostKey {host_dir}/ssh/ssh_host_ed25519_key",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            f"AuthorizedKeysFile {host_dir}/ssh/authorized_keys",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes yes",
            "PidFile none",
            "PrintMotd no",
            "UseDNS no",
            # VERBOSE logs one "Starting session: command" line per command, so lab tests
            # can count the commands and connections a run made.
            "LogLevel VERBOSE",
            "MaxStartups 100:30:200",
            "Subsystem sftp internal-sftp",
            *force,
            "",
        ]
    )


def hosts_file(host: Host) -> str:
    """Return the host's /etc/hosts: itself, and every Azure endpoint name at 10.213.0.2."""
    lines = ["127.0.0.1\tlocalhost", f"{host.address}\t{host.name}"]
    lines += [f"{AZURE_ADDRESS}\t{name}" for name in host.endpoint_names]
    return "\n".join(lines) + "\n"


def _start_line(proc: Process, ctx: LabContext, uid: int, gid: int) -> str:
    argv = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        str(ctx.paths.idle),
        "--as",
        *proc.argv,
    ]
    line = " ".join(shlex.quote(a) for a in argv) + " </dev/null >/dev/null 2>&1 &"
    if proc.pid_file:
        line += f"\necho $! > {shlex.quote(proc.pid_file)}"
    return line


def init_script(host: Host, ctx: LabContext, binds: dict[str, Path]) -> str:
    """Return the host's init.sh (run as PID 1 of its new pid and mount namespaces)."""
    hdir = ctx.paths.host_dir(host.name)
    users = host_users(ctx.sshd_uid)
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        f"# init of lab host {host.name}, generated by lab/linux_host.py",
        "set -eu",
        f"hostname {q(host.name)}",
    ]
    for target, source in binds.items():
        lines.append(f"mount --bind {q(str(source))} {q(target)}")
    lines += [
        "mount -t tmpfs -o mode=0755,size=4m hrw-run /run",
        "mkdir -p /run/sshd",
        "mount -t tmpfs -o mode=1777,size=64m hrw-tmp /tmp",
        "cd /",
        "hrw_started=''",
    ]
    for proc in [*process_plan(host), *extension_processes(host)]:
        user = find_user(users, proc.user)
        lines.append(_start_line(proc, ctx, user.uid, user.gid))
        # What the process's name (comm) is once hrw-idle has taken its real command line.
        lines.append(f'hrw_started="$hrw_started $!:{q(os.path.basename(proc.argv[0])[:15])}"')
    lines += [
        # sshd starts only once every stand-in shows its real command line (bounded: 10 s),
        # so a host that answers SSH, which is what `lab up` waits for, never shows a
        # half-started process table (setpriv or hrw-idle where python should be).
        "hrw_waited=0",
        "for hrw_entry in $hrw_started; do",
        '  while [ "$(cat "/proc/${hrw_entry%%:*}/comm" 2>/dev/null)" != "${hrw_entry#*:}" ] \\',
        "      && [ $hrw_waited -lt 200 ]; do",
        "    sleep 0.05",
        "    hrw_waited=$((hrw_waited + 1))",
        "  done",
        "done",
        f"/usr/sbin/sshd -D -e -f {q(str(hdir / 'ssh' / 'sshd_config'))}"
        f" </dev/null >>{q(str(hdir / 'log' / 'sshd.log'))} 2>&1 &",
        f"exec {q(str(ctx.paths.idle))} --init",
    ]
    return "\n".join(lines) + "\n"


def prepare(host: Host, ctx: LabContext) -> str:
    """Build the host's state directory; return its known_hosts line (address + host key)."""
    hdir = ctx.paths.host_dir(host.name)
    for sub in ("etc", "fs", "sys", "ssh", "log"):
        (hdir / sub).mkdir(parents=True, exist_ok=True)
    users = host_users(ctx.sshd_uid)
    (hdir / "etc" / "passwd").write_text(
        "".join(f"{u.name}:x:{u.uid}:{u.gid}:{u.gecos}:{u.home}:{u.shell}\n" for u in users),
        encoding="utf-8",
    )
    (hdir / "etc" / "group").write_text("\n".join(group_lines()) + "\n", encoding="utf-8")
    # "*": no password, but not locked, so sshd without PAM still admits keys.
    shadow = hdir / "etc" / "shadow"
    shadow.write_text("".join(f"{u.name}:*:20000:0:99999:7:::\n" for u in users), encoding="utf-8")
    shadow.chmod(0o640)
    (hdir / "etc" / "hosts").write_text(hosts_file(host), encoding="utf-8")

    fs = hdir / "fs"
    for sub in ("opt", "etc/opt", "var/opt", "home", "root"):
        (fs / sub).mkdir(parents=True, exist_ok=True)
    (fs / "root").chmod(0o700)
    build_agent_tree(host, fs, users, ctx.agent_proxy(host.profile["network"]))
    build_extension_tree(host, fs, users)
    Path(WAAGENT).mkdir(mode=0o700, parents=True, exist_ok=True)  # the bind's mount point
    stand_in = hdir / "sys" / "systemctl"
    stand_in.write_text(systemctl_script(host), encoding="utf-8")
    stand_in.chmod(0o755)
    token = hdir / "identity-token"
    token.write_text(ctx.imds_token, encoding="utf-8")
    token.chmod(0o600)

    host_key = write_keypair(hdir / "ssh" / "ssh_host_ed25519_key", f"root@{host.name}")
    (hdir / "ssh" / "authorized_keys").write_text(ctx.lab_public_key + "\n", encoding="utf-8")
    session = host.profile["ssh_session"]
    (hdir / "ssh" / "sshd_config").write_text(
        sshd_config(hdir, host.address, session), encoding="utf-8"
    )
    if session != "normal":
        (hdir / "ssh" / "session.sh").write_text(SESSION_SCRIPTS[session], encoding="utf-8")

    binds: dict[str, Path] = {
        f"/etc/{name}": hdir / "etc" / name for name in ("passwd", "group", "shadow", "hosts")
    }
    binds.update({target: fs / target.lstrip("/") for target in BIND_DIRS})
    binds.update(write_sysinfo(hdir / "sys", host.profile))
    binds.update(_openssl_cli(hdir, host.profile["openssl_cli"]))
    binds["/usr/bin/systemctl"] = stand_in
    init = hdir / "init.sh"
    init.write_text(init_script(host, ctx, binds), encoding="utf-8")
    init.chmod(0o755)
    key_type, key_b64 = host_key.split()[:2]
    return f"{host.address} {key_type} {key_b64}"


def _openssl_cli(hdir: Path, cli: str) -> dict[str, Path]:
    """Return the bind mount that puts the stand-in for OpenSSL ``cli`` (1.0.2, 1.1.1) at
    /usr/bin/openssl in the host, over a copy of the real binary it hands the rest to; none
    for ``system`` (this machine's openssl)."""
    if cli == "system":
        return {}
    real = hdir / "openssl-real"
    shutil.copy2(REAL_OPENSSL, real)
    script = hdir / "openssl-standin"
    script.write_text(standin_script(cli, str(real)), encoding="utf-8")
    script.chmod(0o755)
    return {REAL_OPENSSL: script}


def start(host: Host, ctx: LabContext) -> int:
    """Start the host's namespaces and init in the background; return the launcher's pid."""
    hdir = ctx.paths.host_dir(host.name)
    argv = [
        "ip",
        "netns",
        "exec",
        host.netns,
        "taskset",
        "-c",
        cpu_list(host.profile["cpus"]),
        "unshare",
        "--mount",
        "--pid",
        "--uts",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "/bin/sh",
        str(hdir / "init.sh"),
    ]
    pid = spawn_logged(argv, hdir / "log" / "init.log")
    identity = identity_command(host, sys.executable, str(hdir / "identity-token"))
    if identity:
        # Started from outside the host's mount namespace (the interpreter may live under a
        # folder the host binds over) but inside its network namespace; IMDS's address is put
        # on the host's own loopback, so a request to it never leaves the namespace.
        if host.profile["place"] == "azure-vm":
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.netns,
                    "ip",
                    "addr",
                    "add",
                    "169.254.169.254/32",
                    "dev",
                    "lo",
                ],
                check=False,
                capture_output=True,
            )
        spawn_logged(
            ["ip", "netns", "exec", host.netns, *identity],
            hdir / "log" / "identity.log",
            cwd=REPO_ROOT,
        )
    return pid
