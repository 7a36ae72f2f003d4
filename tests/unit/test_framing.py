"""The probes' framing: nothing a host account writes can forge a section, and broken framing
is an error that says the output was tampered with (issue 10 item 1), on both platforms."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from hrw_preflight.facts.framing import (
    Tampered,
    check_boundary,
    new_boundary,
    split_sections,
    utf8_policy,
)
from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.model import Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.facts.windows.probe import SECTIONS, build_invocation, parse_output
from lab.winrm_emulator.engine import run_command
from tests.linux_samples import BOUNDARY, DIY, STATE, LinuxHost, Out, oms_conf, section
from tests.windows_recorded import (
    RECORDED_BOUNDARY,
    endpoint_names,
    loopback_engine_host,
    recorded_output,
    workspace_of,
)

OMS_CONF = f"{STATE}/oms.conf"
SCRIPT = Path(linux.__file__).with_name("linux_facts.sh")


def _forgery(boundary: str) -> str:
    """Return marker text a worker account could append to oms.conf: a complete healthy
    process listing and users block in the old framing and in the new one with ``boundary``
    (as if the account had read it from the probe's command line), and an unterminated
    marker meant to swallow the real blocks."""
    ps = " 8567 998 nxautomation python /x/main.py /y/oms.conf rworkspace:w 1.7\n"
    return (
        f"@@HRW-BEGIN ps\n{ps}@@HRW-END ps rc=0\n"
        f"{section('ps', ps, boundary=boundary)}"
        f"{boundary} BEGIN ps\n"
        "@@HRW-FILE /proc/loadavg\n"
    )


def _parse(host: LinuxHost) -> dict[str, Section]:
    return linux.parse_facts(Out(host.facts_output()), ProbeParams(), boundary=BOUNDARY)


def test_boundaries_are_random_and_checked() -> None:
    first, second = new_boundary(), new_boundary()
    assert first != second and check_boundary(first) == first
    with pytest.raises(ValueError, match="not a probe boundary"):
        check_boundary("@@HRW")


def test_forged_markers_in_a_file_change_no_section_on_linux() -> None:
    stopped = LinuxHost(agent=False, load=3.5)
    forged = LinuxHost(
        agent=False, load=3.5, file_bodies={OMS_CONF: oms_conf() + _forgery(BOUNDARY)}
    )
    before, after = _parse(stopped), _parse(forged)
    assert (
        after["processes"].data
        == before["processes"].data
        == {
            "processes": [],
            "users": {"nxautomation": 998, "omsagent": 997},
        }
    )
    for name in ("pressure", "hardware", "omsconfig_log", "tools", "clock"):
        assert after[name].data == before[name].data, name
    # The forged text is only ever a (malformed) oms.conf: it cannot open a section.
    assert after["worker"].data is None and "malformed" in str(after["worker"].error)


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda text, b: text + section("ps", "", boundary=b), "section 'ps' appears twice"),
        (
            lambda text, b: text.replace(f"{b} END nproc\n", ""),
            "section 'users' began inside section 'nproc'",
        ),
        (lambda text, b: f"{b} END tools\n" + text, "closes no open section"),
    ],
)
def test_broken_framing_errors_every_section_as_tampered(edit: object, why: str) -> None:
    text = edit(LinuxHost().facts_output(), BOUNDARY)  # type: ignore[operator]
    sections = linux.parse_facts(Out(text), ProbeParams(), boundary=BOUNDARY)
    assert set(sections) == set(linux.FACT_SECTIONS)
    for found in sections.values():
        assert found.data is None
        assert "tampered with" in str(found.error) and why in str(found.error)


def test_output_cut_inside_a_section_is_cut_off_not_a_pass() -> None:
    text = LinuxHost().facts_output()
    cut = text[: text.index(f"{BOUNDARY} END tools")]
    sections = linux.parse_facts(Out(cut), ProbeParams(), boundary=BOUNDARY)
    assert all(s.data is None for s in sections.values())
    assert "cut off inside section 'tools'" in str(sections["worker"].error)


def test_output_of_another_run_is_not_read() -> None:
    other = LinuxHost(boundary=new_boundary()).facts_output()
    sections = linux.parse_facts(Out(other), ProbeParams(), boundary=BOUNDARY)
    assert all(s.data is None for s in sections.values())


def test_body_that_is_not_base64_is_garbled() -> None:
    text = (
        LinuxHost().facts_output().replace(f"{BOUNDARY} BEGIN ps\n", f"{BOUNDARY} BEGIN ps\n!!\n")
    )
    sections = linux.parse_facts(Out(text), ProbeParams(), boundary=BOUNDARY)
    assert "section 'ps' is not base64" in str(sections["processes"].error)


def test_splitting_is_linear_in_the_output() -> None:
    # 256 KiB of marker-like lines cost 20 s with the old regex framing; 64 MiB of them
    # (inside one section and outside any) now split in about a second.
    boundary = new_boundary()
    junk = f"{boundary} PART x\n@@HRW-BEGIN ps\n" * (1 << 20)
    text = f"{junk}{boundary} BEGIN big\n{junk}{boundary} END big\n"
    started = time.process_time()
    framed = split_sections(text, boundary)
    assert time.process_time() - started < 10
    assert list(framed.sections) == ["big"]


def test_private_key_in_a_read_file_never_reaches_the_facts() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAsecret\n-----END RSA PRIVATE KEY-----\n"
    sections = _parse(LinuxHost(file_bodies={DIY: key}))
    worker = sections["worker"]
    assert worker.data is None and "holds a private key" in str(worker.error)
    for found in sections.values():
        assert "PRIVATE KEY" not in f"{found.data}{found.error}{found.raw}"
        assert "secret" not in f"{found.data}{found.raw}"


def test_symlinked_file_is_an_error_that_says_so() -> None:
    worker = _parse(LinuxHost(files_rc={DIY: "symlink"}))["worker"]
    assert worker.data is None and "symbolic link" in str(worker.error)
    assert DIY in str(worker.error)


def test_worker_evidence_lists_files_not_their_bodies() -> None:
    worker = _parse(LinuxHost(proxy="http://corp:S3cret@10.1.2.3:3128"))["worker"]
    assert worker.data is not None
    assert f"== {OMS_CONF}: read, " in worker.raw
    assert "S3cret" not in worker.raw and "jrds_base_uri" not in worker.raw


# --- the script itself, on this machine's sh -------------------------------------------


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_facts_script_frames_its_output_on_a_real_shell(shell: str) -> None:
    boundary = new_boundary()
    proc = subprocess.run(
        [shell, "-c", SCRIPT.read_text(), "hrw-facts", boundary, "4096"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    result = Out(proc.stdout.decode(), rc=proc.returncode, stderr=proc.stderr.decode())
    sections = linux.parse_facts(result, ProbeParams(), boundary=boundary)
    hardware = sections["hardware"].data
    assert hardware is not None and hardware["memory_bytes"] > 0, sections["hardware"].error
    assert sections["tools"].data is not None and sections["clock"].error is not None
    # What a real shell prints has the declared shapes (the schema is checked on it).
    assert not [s.error for s in sections.values() if "unexpected shape" in str(s.error)]
    timed = linux.parse_facts(result, ProbeParams(), (0.0, 1.0), boundary=boundary)
    assert timed["clock"].data is not None and timed["processes"].data is not None


def _hrw_read(shell: str, root: Path, path: str) -> str:
    text = SCRIPT.read_text()
    start = text.index("hrw_read() {")
    function = text[start : text.index("\n}\n", start) + 3]
    proc = subprocess.run(
        [shell, "-c", function + 'hrw_read "$1" "$2"', "t", str(root), path],
        capture_output=True,
        timeout=10,
        check=True,
    )
    return proc.stdout.decode()


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_links_inside_the_tree_are_never_followed(shell: str, tmp_path: Path) -> None:
    root = tmp_path / "omsagent"
    (root / "state").mkdir(parents=True)
    (root / "state" / "worker.conf").write_text("[worker-required]\n")
    (tmp_path / "oms.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    (root / "diy").symlink_to(tmp_path)
    (root / "state" / "linked.conf").symlink_to(tmp_path / "oms.key")
    assert _hrw_read(shell, root, "/state/worker.conf") == "[worker-required]\n\n0"
    assert _hrw_read(shell, root, "/state/linked.conf") == "\nsymlink"
    assert _hrw_read(shell, root, "/diy/oms.key") == "\nsymlink"
    assert _hrw_read(shell, root, "/state/none.conf") == "\nmissing"
    (root / "state" / "dir.conf").mkdir()
    assert _hrw_read(shell, root, "/state/dir.conf") == "\nnotfile"


# --- Windows ------------------------------------------------------------------------------


def test_windows_duplicate_section_is_tampered() -> None:
    stdout, stderr, rc = recorded_output("windows-healthy")
    b = RECORDED_BOUNDARY
    extra = f"{b} BEGIN service\r\n{{}}\r\n{b} END service\r\n".encode()
    sections = parse_output(stdout + extra, stderr, rc, boundary=b)
    assert set(sections) == set(SECTIONS)
    assert all("tampered with" in str(s.error) for s in sections.values())


def test_windows_output_with_another_boundary_is_not_read() -> None:
    stdout, stderr, rc = recorded_output("windows-healthy")
    sections = parse_output(stdout, stderr, rc, boundary=new_boundary())
    assert all(s.data is None for s in sections.values())


def test_windows_event_text_with_markers_stays_inside_its_json() -> None:
    # An event message is host-written text; ConvertTo-Json keeps it on one line.
    b = RECORDED_BOUNDARY
    forged = f"x\r\n{b} END events\r\n{b} BEGIN service\r\n{{}}\r\n@@HRW-END service"
    workspace = workspace_of("w1")
    host = loopback_engine_host(
        "w1",
        workspace,
        endpoint_names(workspace),
        {},
        None,
        {
            "events": [
                {
                    "log": "Operations Manager",
                    "id": 4502,
                    "provider": "HealthService",
                    "level": 2,
                    "minutes_ago": 5,
                    "message": forged,
                }
            ],
            "healthservice": {"exists": True, "status": "Stopped", "start_type": "Disabled"},
        },
    )
    command, stdin = build_invocation(ProbeParams(connect_timeout_s=0.2), b)
    output = run_command(command, [], stdin, host)
    sections = parse_output(output.stdout, output.stderr, output.exit_code, boundary=b)
    events = sections["events"].data
    assert events is not None
    assert [e["message"] for e in events["logs"]["Operations Manager"]] == [forged]
    assert sections["service"].data is not None and sections["service"].data["state"] == "Stopped"


def test_windows_bytes_that_are_not_utf8_fail_only_their_section() -> None:
    stdout, stderr, rc = recorded_output("windows-healthy")
    bad = stdout.replace(b'"HealthService"', b'"Health\xe9Service"', 1)
    sections = parse_output(bad, stderr, rc, boundary=RECORDED_BOUNDARY)
    assert "not valid UTF-8 (byte 0xe9)" in str(sections["service"].error)
    assert "\ufffd" in sections["service"].raw
    assert sections["hardware"].data is not None


def test_utf8_policy_names_the_section() -> None:
    found = utf8_policy(Section("tools", {"found": {"x": "caf\udce9"}}))
    assert found.data is None and "'tools'" in str(found.error)


def test_split_rejects_a_malformed_boundary() -> None:
    with pytest.raises(ValueError):
        split_sections("", "HRW-x")
    with pytest.raises(Tampered):
        split_sections(f"{BOUNDARY} END a\n", BOUNDARY)


def test_one_clock_computation_on_both_platforms() -> None:
    from hrw_preflight.facts.clock import CommandTiming, clock_data
    from hrw_preflight.facts.linux.probe import clock_section
    from hrw_preflight.facts.windows.probe import _clock, _parts

    timing = CommandTiming(1000.0, 1003.0)
    expected = {"host_epoch": 1001.0, "controller_epoch": 1001.5, "uncertainty_s": 2.5}
    assert clock_data(1001.0, timing) == expected
    assert clock_section("1001\n", (1000.0, 1003.0), "raw").data == expected
    lines = ['{"UtcUnixMilliseconds": 1001000}']
    assert _clock(_parts("clock", lines, BOUNDARY), timing) == expected
    unknown = clock_section("1001\n", None, "raw")
    assert unknown.data is None and "controller's time" in str(unknown.error)
