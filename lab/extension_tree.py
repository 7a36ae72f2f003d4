"""The extension-based (V2) worker of a Linux lab host: the guest agent's files, the worker's
processes, the Arc agent, what systemd would say of hwd, and migration remnants.

Files follow the real layout and JSON formats of the Linux guest agent (Azure/WALinuxAgent):
``/var/lib/waagent/<handler>-<version>/`` with ``HandlerManifest.json``,
``HandlerEnvironment.json``, ``mrseq``, ``config/HandlerState``, ``config/<seq>.settings``
and ``status/<seq>.status`` (a JSON array). Microsoft never published hwd's command line or
unit, so the worker's processes are idle stand-ins under ``hweautomation`` with a command
line that says so; what the suite judges is their owner. The lab hosts have no systemd:
``systemctl_script`` is a stand-in bound over /usr/bin/systemctl that answers only the
three questions the probe asks about hwd, from the profile (README, "The lab").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lab.agent_tree import Process, User, user_by_name
from lab.fleet import Host

HANDLER = "Microsoft.Azure.Automation.HybridWorker.HybridWorkerForLinux"
VERSION = "1.1.13"
EXT_DIR = f"/var/lib/waagent/{HANDLER}-{VERSION}"
SEQ = 3
THUMBPRINT = "3C9A3FA9C1E2B7B4D0E3F1A2B3C4D5E6F7A8B9C0"
PROTECTED = "MIIBsAYJKoZIhvcNAQcDoIIBoTCCAZ0CAQAxggFp-lab-encrypted"  # never decrypted
PLACEHOLDER = "# hrw lab: placeholder of the extension's file; nothing runs it\n"
MESSAGES = {
    "success": ("Enable succeeded", "[2026-12-01T10:00:02Z] Hybrid worker registered"),
    "error": (
        "Enable failed",
        "[2026-12-01T10:00:02Z] Failed to register the hybrid worker: Invalid Authorization Token",
    ),
    "transitioning": ("Installing the hybrid worker", "[2026-12-01T10:00:02Z] Install started"),
    "warning": ("Enable completed with warnings", "[2026-12-01T10:00:02Z] Retrying"),
}


def realm(host: Host) -> str:
    """Return the key file the host's himds names in its challenge."""
    return f"/var/opt/azcmagent/tokens/{host.account_id}.key"


def settings_json(host: Host) -> str:
    """Return ``config/<seq>.settings`` as the guest agent writes it."""
    return json.dumps(
        {
            "runtimeSettings": [
                {
                    "handlerSettings": {
                        "protectedSettingsCertThumbprint": THUMBPRINT,
                        "protectedSettings": PROTECTED,
                        "publicSettings": {"AutomationAccountURL": host.account_url},
                    }
                }
            ]
        }
    )


def status_json(status: str) -> str:
    """Return ``status/<seq>.status`` (a JSON array) for the extension's ``status``."""
    message, sub = MESSAGES[status]
    return json.dumps(
        [
            {
                "version": "1.0",
                "timestampUTC": "2026-12-01T10:00:03Z",
                "status": {
                    "name": HANDLER,
                    "operation": "Enable",
                    "status": status,
                    "code": 0 if status in ("success", "transitioning") else 1,
                    "configurationAppliedTime": "2026-12-01T10:00:03Z",
                    "formattedMessage": {"lang": "en-US", "message": message},
                    "substatus": [
                        {
                            "name": "HybridWorkerExtension",
                            "status": status,
                            "code": 0,
                            "formattedMessage": {"lang": "en-US", "message": sub},
                        }
                    ],
                },
            }
        ]
    )


def _write(root: Path, path: str, content: str, owner: User, mode: int) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    os.chown(target, owner.uid, owner.gid)
    os.chmod(target, mode)


def build_extension_tree(host: Host, fs: Path, users: list[User]) -> None:
    """Write the host's /var/lib/waagent, /opt/azcmagent and remnant files under ``fs``."""
    p = host.profile
    root = user_by_name(users, "root")
    hwe = user_by_name(users, "hweautomation")
    waagent = fs / "var" / "lib" / "waagent"
    waagent.mkdir(parents=True, exist_ok=True)
    waagent.chmod(0o700)
    ext = p["extension"]
    if ext:
        d = EXT_DIR
        manifest = [
            {
                "version": 1.0,
                "handlerManifest": {
                    "installCommand": "./extension_shim.sh -c ./HWExtensionHandlers.py -i",
                    "uninstallCommand": "./extension_shim.sh -c ./HWExtensionHandlers.py -u",
                    "updateCommand": "./extension_shim.sh -c ./HWExtensionHandlers.py -p",
                    "enableCommand": "./extension_shim.sh -c ./HWExtensionHandlers.py -e",
                    "disableCommand": "./extension_shim.sh -c ./HWExtensionHandlers.py -d",
                    "rebootAfterInstall": False,
                    "reportHeartbeat": False,
                },
            }
        ]
        environment = [
            {
                "name": HANDLER,
                "seqNo": str(SEQ),
                "version": 1.0,
                "handlerEnvironment": {
                    "logFolder": f"/var/log/azure/{HANDLER}",
                    "configFolder": f"{d}/config",
                    "statusFolder": f"{d}/status",
                    "heartbeatFile": f"{d}/heartbeat.log",
                },
            }
        ]
        _write(fs, f"{d}/HandlerManifest.json", json.dumps(manifest), root, 0o644)
        _write(fs, f"{d}/HandlerEnvironment.json", json.dumps(environment), root, 0o644)
        for name in ("extension_shim.sh", "HWExtensionHandlers.py"):
            _write(fs, f"{d}/{name}", PLACEHOLDER, root, 0o755)
        _write(fs, f"{d}/Troubleshooter/LinuxTroubleshooter.py", PLACEHOLDER, root, 0o755)
        _write(fs, f"{d}/mrseq", str(SEQ), root, 0o600)
        _write(fs, f"{d}/config/HandlerState", ext["handler_state"], root, 0o600)
        _write(fs, f"{d}/config/{SEQ}.settings", settings_json(host), root, 0o600)
        _write(fs, f"{d}/status/{SEQ}.status", status_json(ext["status"]), root, 0o600)
    if ext or "extension" in p["remnants"]:
        state = fs / "home" / "hweautomation" / "state"
        state.mkdir(parents=True, exist_ok=True)
        for path in (state.parent, state):
            os.chown(path, hwe.uid, hwe.gid)
    if "agent" in p["remnants"]:
        nxa = user_by_name(users, "nxautomation")
        for name in ("worker.conf", "worker_diy.crt", "worker_diy.key"):
            # Placeholders: the probe only looks for these files, never reads them.
            _write(fs, f"/home/nxautomation/state/{name}", "# hrw lab: remnant\n", nxa, 0o600)
        for path in (fs / "home" / "nxautomation", fs / "home" / "nxautomation" / "state"):
            os.chown(path, nxa.uid, nxa.gid)
    if p["place"] == "arc":
        _write(fs, "/opt/azcmagent/bin/himds", PLACEHOLDER, root, 0o755)
        _write(fs, "/opt/azcmagent/bin/azcmagent", PLACEHOLDER, root, 0o755)
        tokens = fs / "var" / "opt" / "azcmagent" / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        tokens.chmod(0o750)


def extension_processes(host: Host) -> list[Process]:
    """Return the worker's and the Arc agent's processes the profile says are running."""
    p = host.profile
    plan: list[Process] = []
    ext = p["extension"]
    if ext and ext["hwd_active"] == "active":
        # hwd's command line is not published: the stand-in's says what it is.
        plan.append(Process("hweautomation", ("hrw-lab-hwd-stand-in", "--worker")))
        plan.append(Process("hweautomation", ("hrw-lab-hwd-stand-in", "--job-sandbox")))
    if p["place"] == "arc" and p["himds_running"]:
        plan.append(Process("himds", ("/opt/azcmagent/bin/himds",)))
    return plan


def systemctl_script(host: Host) -> str:
    """Return the host's systemctl stand-in: it answers the probe's three questions about
    hwd from the profile and fails everything else as systemctl does without systemd."""
    ext = host.profile["extension"]
    load, active, enabled = (
        ("loaded", ext["hwd_active"], ext["hwd_enabled"])
        if ext
        else ("not-found", "inactive", "not-found")
    )
    return f"""#!/bin/sh
# hrw lab: stand-in for systemctl (lab hosts have no systemd); answers for hwd from the
# profile {host.profile.name}, generated by lab/extension_tree.py
case "$*" in
  "show -p LoadState --value hwd") echo {load} ;;
  "is-active hwd") echo {active}; [ {active} = active ] ;;
  "is-enabled hwd") echo {enabled}; [ {enabled} = enabled ] ;;
  *) echo "System has not been booted with systemd as init system (PID 1). Can't operate." >&2
     exit 1 ;;
esac
"""


def identity_command(host: Host, python: str, token_file: str) -> list[str]:
    """Return the identity server's argv for the host (empty when it serves none)."""
    p = host.profile
    argv: list[str] = []
    if p["place"] == "azure-vm":
        argv += ["--imds", "169.254.169.254:80", "--identity", p["imds_identity"]]
        argv += ["--token-file", token_file]
    if p["place"] == "arc" and p["himds_running"]:
        argv += ["--arc", "127.0.0.1:40342", "--realm", realm(host)]
    return [python, "-m", "lab.identity_server", *argv] if argv else []
