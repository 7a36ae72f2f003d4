"""Every option that weakens what the checks prove is flagged in the run header, the HTML
summary and evidence.json: StrictHostKeyChecking in any spelling OpenSSH accepts as "no",
ssh config files that turn checking off, and the run-wide --hrw-trusted-ca."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrw_preflight.hosts.targets import Target, ssh_config_weakening
from tests.linux_samples import LinuxHost
from tests.pki_samples import make_cert
from tests.suite_runner import latest, load_evidence, local_facts, run_suite

pytest_plugins = ["pytester"]

RELAXED = "SSH host key checking relaxed (StrictHostKeyChecking)"


def ssh_target(extra: str = "", config: str | None = None, connection: str = "ssh") -> Target:
    return Target(
        name="web1",
        platform="linux",
        connection=connection,  # type: ignore[arg-type]
        address="192.0.2.5",
        ssh_extra_args=extra,
        ssh_config=config,
    )


@pytest.mark.parametrize(
    "extra",
    [
        "-o StrictHostKeyChecking=false",
        "-oStrictHostKeyChecking=False",
        "-o StrictHostKeyChecking=off",
        "-o 'StrictHostKeyChecking no'",
        "-o StrictHostKeyChecking=accept-new",
    ],
)
def test_every_spelling_of_no_is_weakened(extra: str, tmp_path: Path) -> None:
    empty = tmp_path / "config"
    empty.write_text("")
    assert RELAXED in ssh_target(extra, str(empty)).weakened()


@pytest.mark.parametrize("extra", ["-o StrictHostKeyChecking=yes", "-o StrictHostKeyChecking=ask"])
def test_checking_on_is_not_weakened(extra: str, tmp_path: Path) -> None:
    empty = tmp_path / "config"
    empty.write_text("")
    assert ssh_target(extra, str(empty)).weakened() == []


def test_an_ssh_config_that_turns_checking_off_is_weakened(tmp_path: Path) -> None:
    included = tmp_path / "conf.d" / "lab.conf"
    included.parent.mkdir()
    included.write_text("Host *.lab\n  UserKnownHostsFile /dev/null\n")
    config = tmp_path / "config"
    config.write_text(
        "# StrictHostKeyChecking no   (a comment does not count)\n"
        "Include conf.d/*.conf\nHost *\n  StrictHostKeyChecking false\n"
    )
    ssh_config_weakening.cache_clear()
    assert ssh_target("", str(config)).weakened() == [
        f"{RELAXED} in ssh config {config}",
        f"SSH known hosts discarded (UserKnownHostsFile=/dev/null) in ssh config {included}",
    ]
    assert ssh_target("", str(config), connection="paramiko").weakened() == [
        f"{RELAXED} in ssh config {config}",
        f"SSH known hosts discarded (UserKnownHostsFile=/dev/null) in ssh config {included}",
    ]
    # ssh takes the first value of an option, and -o comes first: the config's is not used.
    assert ssh_target("-o StrictHostKeyChecking=yes", str(config)).weakened() == [
        f"SSH known hosts discarded (UserKnownHostsFile=/dev/null) in ssh config {included}"
    ]


def test_run_wide_trusted_ca_and_ssh_config_flagged_in_header_html_and_evidence(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = pytester.path / "extra-ca.pem"
    ca.write_text(make_cert("Extra Root", None, ca=True).pem)
    config = pytester.path / "ssh_config"
    config.write_text("Host *\n  StrictHostKeyChecking no\n")
    facts = {"web1": local_facts(LinuxHost())}
    monkeypatch.setattr(facts["web1"], "host", "web1")
    result = run_suite(
        pytester,
        monkeypatch,
        facts,
        [
            "--hosts=ssh://root@web1",
            f"--ssh-config={config}",
            f"--hrw-trusted-ca={ca}",
            "-k",
            "HRW-L02",
        ],
    )
    ca_line = (
        f"extra trusted CAs from {ca} widen the Azure CA list for every host (--hrw-trusted-ca)"
    )
    config_line = f"{RELAXED} in ssh config {config}"
    header = result.stdout.str()
    assert f"WEAKENED: {ca_line}" in header
    assert f"WEAKENED: {config_line} (on 1 host: web1)" in header
    html = (latest(pytester) / "report.html").read_text()
    assert f"WEAKENED: {ca_line}" in html and f"WEAKENED: {config_line}" in html
    record = load_evidence(latest(pytester))
    assert record["weakened"]["run"] == [ca_line]
    assert record["weakened"]["hosts"] == {"web1": [config_line]}
