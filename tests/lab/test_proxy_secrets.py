"""The lab proxy's password ends with characters the agent allows and a URL parser does not
(``#/? :'"``): the intercepted hosts' checks are judged right, no part of the password
reaches any output, and on Windows it is in nothing PowerShell's logging would record."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from lab.context import PROXY_PASSWORD_HARD_PART
from lab.control import read_state
from lab.paths import LabPaths
from tests.lab.suite_run import INVENTORY, run_suite

pytestmark = pytest.mark.lab

HOSTS = ("linux-tls-intercepted", "windows-tls-intercepted")


def test_proxy_password_reaches_no_output_and_no_powershell_log(tmp_path: Path) -> None:
    paths = LabPaths()
    state = read_state(paths)
    assert state is not None
    password = str(state["proxy_password"])
    assert password.endswith(PROXY_PASSWORD_HARD_PART)
    script_log = paths.host_dir("windows-tls-intercepted") / "powershell-script-log.jsonl"
    script_log.unlink(missing_ok=True)
    run = run_suite(
        [
            f"--ansible-inventory={INVENTORY}",
            "--hosts=ansible://all",
            "-k",
            "tls-intercepted",
            "-rA",
        ],
        tmp_path / "reports",
    )
    assert set(run.outcomes) == set(HOSTS), run.output[-3000:]
    # Right verdicts: TCP 443 and TLS through the authenticating proxy work (so the
    # password was read and sent right); the chain is the proxy's, not Azure's.
    for host in HOSTS:
        by_check = {(o.scenario, o.item): o.kind for o in run.outcomes[host]}
        for role in ("agentsvc", "oms"):
            assert by_check[("HRW-G01", role)] == "passed", (host, run.output[-3000:])
            assert by_check[("HRW-G04", role)] == "failed", host
    random_part = password[: -len(PROXY_PASSWORD_HARD_PART)]
    secrets = {
        "password": password,
        "random part": random_part,
        "hard part": PROXY_PASSWORD_HARD_PART[:-1],
        "base64 of user:password": base64.b64encode(f"hrwproxy:{password}".encode()).decode(),
    }
    outputs = {"terminal": run.output}
    folder = tmp_path / "reports" / "latest"
    outputs.update({p.name: p.read_text() for p in folder.iterdir()})
    for name, text in outputs.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} of the proxy password in {name}"
    record = json.loads((folder / "evidence.json").read_text())
    worker = record["hosts"]["linux-tls-intercepted"]["worker"]
    assert worker["proxy"]["url"] == "http://hrwproxy:***@10.213.0.3:3128"
    # What the Windows host's PowerShell logging would hold: command line, script blocks,
    # parameter values. The emulator received the password (G01 passed) but not there.
    entries = [json.loads(line) for line in script_log.read_text().splitlines()]
    assert {e["event"] for e in entries} == {4688, 4104, 4103}
    logged = json.dumps(entries)
    for what, secret in secrets.items():
        assert secret not in logged, f"{what} of the proxy password in a PowerShell log"
    documents = [json.loads(e["value"]) for e in entries if e.get("command") == "ConvertFrom-Json"]
    assert documents and all(d["proxy"]["user"] == "hrwproxy" for d in documents)
