"""What to do about an error: how to make a check possible, by the cause of the error.

An error means the check could not be made, not that the host is unhealthy, so the
scenario's remediation ("Allow outbound TCP 443 ...") would send the operator the wrong
way: a wrong SSH key or an unreadable log has nothing to do with the firewall. The reason
text of an error verdict names its cause (the connection error, the probe's reason for a
section); :func:`error_cause` sorts it into one of a few causes and :func:`error_fix` says
what makes the check possible again.
"""

from __future__ import annotations

import re

# Checked in this order: the first pattern that matches the reason names the cause. Host
# keys and credentials come before the generic "permission denied" (sshd's "Permission
# denied (publickey)" is a credentials problem, not a file permission).
_CAUSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "host-key",
        re.compile(r"host key|known_hosts|REMOTE HOST IDENTIFICATION|host identification", re.I),
    ),
    (
        "credentials",
        re.compile(
            r"permission denied \((?:publickey|password|keyboard)|authenticat|credential|"
            r"login failed|kerberos ticket|"
            r"unauthori[sz]ed|\b401\b|password|logon failure|access is denied.*logon|"
            r"no identities|invalid user|too many authentication",
            re.I,
        ),
    ),
    (
        "timeout",
        re.compile(r"timed out|timeout|no answer within|did not finish|deadline", re.I),
    ),
    (
        "reachability",
        re.compile(
            r"unreachable|connection refused|refused|no route|could not resolve|"
            r"name or service not known|name resolution|connection (?:closed|reset|lost)|"
            r"closed by remote|broken pipe|network is down|ssh failed|winrm",
            re.I,
        ),
    ),
    (
        "permission",
        re.compile(r"permission denied|access is denied|not permitted|may not read|denied", re.I),
    ),
    (
        "missing-tool",
        re.compile(r"not installed|command not found|not found on the path|no such command", re.I),
    ),
)

FIXES: dict[str, str] = {
    "host-key": (
        "The host's SSH key is unknown or has changed: confirm the key with the host's owner, "
        "then add it to known_hosts (ssh-keyscan, compared out of band) and run again; use "
        "--accept-unknown-host-keys only where the report may say host keys were not verified."
    ),
    "credentials": (
        "The login was refused: check the inventory's user and key (ansible_user, "
        "ansible_ssh_private_key_file) or WinRM password (ansible_password, "
        "HRW_WINRM_PASSWORD_<HOST>) and the transport, then run again."
    ),
    "timeout": (
        "The host did not answer in time: check that it is up and not overloaded, or raise "
        "--hrw-connect-timeout / --hrw-command-timeout, then run again."
    ),
    "reachability": (
        "The host could not be reached from this controller: check its address and port in "
        "the inventory, that it is running, and that SSH (22) or WinRM (5985/5986) is open "
        "from the controller to it, then run again."
    ),
    "permission": (
        "The login may not read what this check needs: run as an account that can (root, or "
        "--sudo / ansible_become: true), then run again."
    ),
    "missing-tool": (
        "A tool the probe needs is missing on the host: install it (see HRW-I01 for the "
        "tools a worker image needs), then run again."
    ),
    "unreadable": (
        "The host's answer could not be read: run again; if it persists, keep this report "
        "(its evidence holds the raw output) and raise it with the suite's maintainers."
    ),
}


def error_cause(reason: str) -> str:
    """Return the cause of an error verdict from its reason text: one of :data:`FIXES`'s keys.

    Anything that names no known cause (garbled or malformed output) is ``unreadable``.
    """
    for cause, pattern in _CAUSES:
        if pattern.search(reason):
            return cause
    return "unreadable"


def error_fix(reason: str) -> str:
    """Return how to make a check possible whose error verdict says ``reason``."""
    return FIXES[error_cause(reason)]
