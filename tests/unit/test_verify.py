"""``python -m hrw_preflight verify``: intact bundles pass, damaged ones name the file."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hrw_preflight.__main__ import main as cli
from hrw_preflight.facts.model import HostFacts
from hrw_preflight.report.atomic import sha256sums
from hrw_preflight.report.evidence import EVIDENCE, SUMS
from hrw_preflight.report.verify import main as verify_main
from hrw_preflight.report.verify import verify_bundle
from tests.linux_samples import LinuxHost
from tests.suite_runner import latest, local_facts, run_suite

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bundle(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a fresh, intact run folder."""
    run_suite(
        pytester,
        monkeypatch,
        {"local": local_facts(LinuxHost(agent=False))},
        ["--hosts=local://", "-k", "HRW-L02"],
    )
    return latest(pytester)


def lines(folder: Path) -> tuple[int, list[str]]:
    """Return verify's exit code and output lines for ``folder``."""
    out = io.StringIO()
    code = verify_main(str(folder), out)
    return code, out.getvalue().splitlines()


def test_intact_bundle_verifies_from_the_command_line(bundle: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hrw_preflight", "verify", str(bundle)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == (
        f"OK {bundle}: run {bundle.name}: 4 files match SHA256SUMS and agree with each other, "
        "status complete (1 failed); unsigned: the hashes show the files agree, not who wrote "
        "them\n"
    )
    shutil.copytree(bundle, bundle.parent / "archived")  # a kept copy still verifies
    code, out = lines(bundle.parent / "archived")
    assert code == 0 and out[0].startswith("WARN evidence.json: run id")


def test_changed_file_is_named(bundle: Path) -> None:
    page = bundle / "report.html"
    page.write_text(page.read_text().replace("failed", "passed"))
    code, out = lines(bundle)
    assert code == 1
    assert out == ["FAIL report.html: changed since the run (sha256 does not match SHA256SUMS)"]


def test_missing_file_is_named_and_extra_file_is_a_warning(bundle: Path) -> None:
    (bundle / "junit.xml").unlink()
    (bundle / "notes.txt").write_text("mine")
    code, out = lines(bundle)
    assert code == 1
    assert out == [
        "FAIL junit.xml: missing (listed in SHA256SUMS)",
        "WARN notes.txt: not listed in SHA256SUMS (not part of the evidence)",
    ]
    # Something else put in its place and rehashed: the hashes agree, the files do not.
    shutil.copy(bundle / "report.html", bundle / "junit.xml")
    names = ["report.html", "checks.html", "junit.xml", EVIDENCE]
    (bundle / SUMS).write_text(sha256sums(bundle, names))
    code, out = lines(bundle)
    assert code == 1
    assert out[0] == "FAIL junit.xml: not readable XML (ParseError)"


def test_rehashed_evidence_that_breaks_the_schema_is_refused(bundle: Path) -> None:
    record = json.loads((bundle / EVIDENCE).read_text())
    record["checks"][0]["outcome"] = "ok"
    del record["operator"]
    (bundle / EVIDENCE).write_text(json.dumps(record))
    names = ["report.html", "checks.html", "junit.xml", EVIDENCE]
    (bundle / SUMS).write_text(sha256sums(bundle, names))
    code, out = lines(bundle)
    assert code == 1
    assert any(
        line.startswith(
            "FAIL evidence.json: does not match the schema at (top level): "
            "'operator' is a required property"
        )
        for line in out
    )
    assert any("checks/0/outcome" in line for line in out)


def test_bundle_whose_sums_leave_out_a_report_is_refused(bundle: Path) -> None:
    (bundle / SUMS).write_text(sha256sums(bundle, ["junit.xml", EVIDENCE]))
    code, out = lines(bundle)
    assert code == 1
    assert "FAIL report.html: recorded by evidence.json but not listed in SHA256SUMS" in out


def test_unsealed_folder_and_garbled_sums_are_refused(bundle: Path, tmp_path: Path) -> None:
    (bundle / SUMS).write_text("not a sum line\n" + "0" * 64 + "  ../etc/passwd\n")
    code, out = lines(bundle)
    assert code == 1
    assert out[:2] == [
        "FAIL SHA256SUMS: line 1 is not '<sha256>  <file name>'",
        "FAIL SHA256SUMS: line 2 is not '<sha256>  <file name>'",
    ]
    (bundle / SUMS).unlink()
    code, out = lines(bundle)
    assert code == 1 and len(out) == 1 and out[0].startswith("FAIL SHA256SUMS: missing")
    assert not verify_bundle(tmp_path / "nowhere").ok


def test_cli_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli([])
    assert caught.value.code == 2 and "verify" in capsys.readouterr().err


def _rehash(bundle: Path) -> None:
    names = ["report.html", "checks.html", "junit.xml", EVIDENCE]
    (bundle / SUMS).write_text(sha256sums(bundle, names))


def _turn_failure_into_pass(bundle: Path, *, summary_too: bool) -> None:
    record = json.loads((bundle / EVIDENCE).read_text())
    record["checks"][0]["outcome"] = "passed"
    if summary_too:
        record["summary"]["failed"] -= 1
        record["summary"]["passed"] += 1
    (bundle / EVIDENCE).write_text(json.dumps(record))
    _rehash(bundle)


def test_an_edited_record_with_new_hashes_fails_the_count_cross_check(bundle: Path) -> None:
    _turn_failure_into_pass(bundle, summary_too=False)
    code, out = lines(bundle)
    assert code == 1
    assert out[0] == (
        "FAIL evidence.json: summary says 1 failed but its checks hold 0: "
        "the record was changed after the run"
    )
    assert out[1].startswith("FAIL evidence.json: summary says 0 passed but its checks hold 1")


def test_an_edited_record_and_summary_with_new_hashes_fails_against_junit(bundle: Path) -> None:
    _turn_failure_into_pass(bundle, summary_too=True)
    code, out = lines(bundle)
    assert code == 1
    assert out == [
        "FAIL junit.xml: local:HRW-L02:omsagent is failed there but passed in evidence.json"
    ]


def _signers(folder: Path, principal: str, key: Path) -> Path:
    kind, blob = key.with_name(key.name + ".pub").read_text().split()[:2]
    path = folder / f"allowed-{principal}"
    path.write_text(f"{principal} {kind} {blob}\n")
    return path


@pytest.fixture
def signed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Path, Path]:
    """Return a bundle signed with a fresh key, and an allowed-signers file naming that key."""
    keys = tmp_path / "keys"
    keys.mkdir()
    key = keys / "ci"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    result = run_suite(
        pytester,
        monkeypatch,
        {"local": local_facts(LinuxHost(agent=False))},
        ["--hosts=local://", "-k", "HRW-L02", f"--hrw-sign-key={key}"],
    )
    assert "bundle: signed" in result.stdout.str()
    return latest(pytester), _signers(keys, "ci@example.org", key)


def test_a_signed_bundle_verifies_and_names_its_signer(signed: tuple[Path, Path]) -> None:
    bundle, allowed = signed
    out = io.StringIO()
    assert verify_main(str(bundle), out, allowed_signers=str(allowed)) == 0
    assert out.getvalue().rstrip().endswith("; signed by ci@example.org")
    # Without --allowed-signers the signature is there but proves nothing: say so.
    code, text = lines(bundle)
    assert code == 0
    assert text[0].startswith("WARN SHA256SUMS.sig: present but not checked")


def test_a_wrong_signer_fails(signed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = signed
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    allowed = _signers(tmp_path, "someone-else", other)
    out = io.StringIO()
    assert verify_main(str(bundle), out, allowed_signers=str(allowed)) == 1
    assert out.getvalue().startswith(
        f"FAIL SHA256SUMS.sig: signed by a key that is not in {allowed}"
    )


def test_a_signed_bundle_rewritten_with_new_hashes_fails_the_signature(
    signed: tuple[Path, Path],
) -> None:
    bundle, allowed = signed
    # A careful forger: every file edited consistently, hashes rewritten.
    for name in ("evidence.json", "junit.xml", "report.html"):
        path = bundle / name
        path.write_text(path.read_text().replace("failed", "passed"))
    _rehash(bundle)
    out = io.StringIO()
    assert verify_main(str(bundle), out, allowed_signers=str(allowed)) == 1
    assert "FAIL SHA256SUMS.sig: the signature does not verify over SHA256SUMS" in out.getvalue()


def test_an_unsigned_bundle_fails_when_a_signer_is_required(bundle: Path, tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    out = io.StringIO()
    assert verify_main(str(bundle), out, allowed_signers=str(_signers(tmp_path, "x", key))) == 1
    assert out.getvalue().startswith("FAIL SHA256SUMS.sig: missing")


def test_an_unusable_sign_key_stops_the_run_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = tmp_path / "locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(key)], check=True
    )
    for path in (key, tmp_path / "nowhere"):
        result = run_suite(
            pytester,
            monkeypatch,
            {"local": local_facts(LinuxHost())},
            ["--hosts=local://", "-k", "HRW-L02", f"--hrw-sign-key={path}"],
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
        assert len(errors) == 1 and f"--hrw-sign-key {path}:" in errors[0]


def test_a_bundle_with_errors_and_skips_agrees_with_itself(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = HostFacts("local", "linux", connect_error="ssh failed: Connection refused")
    run_suite(pytester, monkeypatch, {"local": down}, ["--hosts=local://", "-k", "HRW-L"])
    verdict = verify_bundle(latest(pytester))
    assert verdict.problems == []
    # Every check of the unreachable host is an error (how many: the catalogue's business).
    assert re.search(r"status complete \(\d+ error\);", verdict.summary), verdict.summary
