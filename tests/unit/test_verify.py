"""``python -m hrw_preflight verify``: intact bundles pass, damaged ones name the file."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hrw_preflight.__main__ import main as cli
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
    assert done.stdout.startswith(
        f"OK {bundle}: run {bundle.name}: 3 files intact, status complete (1 failed)"
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
    shutil.copy(bundle / "report.html", bundle / "junit.xml")
    (bundle / SUMS).write_text(sha256sums(bundle, ["report.html", "junit.xml", EVIDENCE]))
    code, out = lines(bundle)
    assert code == 0 and out[0].startswith("WARN notes.txt")


def test_rehashed_evidence_that_breaks_the_schema_is_refused(bundle: Path) -> None:
    record = json.loads((bundle / EVIDENCE).read_text())
    record["checks"][0]["outcome"] = "ok"
    del record["operator"]
    (bundle / EVIDENCE).write_text(json.dumps(record))
    (bundle / SUMS).write_text(sha256sums(bundle, ["report.html", "junit.xml", EVIDENCE]))
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
