"""``merge --allowed-signers FILE`` takes only shards signed by an allowed key, and
``merge --sign-key FILE`` signs the merged SHA256SUMS as a run's ``--hrw-sign-key`` does.

Keys are made by ssh-keygen in a temporary folder; shards are synthetic bundles
(``bench/synth.py``) signed with the product's own ``sign_sums``, as a run signs its bundle.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.synth import make_fleet
from hrw_preflight.__main__ import main
from hrw_preflight.report import atomic
from hrw_preflight.report.evidence import EVIDENCE, SUMS
from hrw_preflight.report.signing import SIGNATURE, sign_sums
from hrw_preflight.report.verify import main as verify_main

REFUSED = int(pytest.ExitCode.USAGE_ERROR)
TESTS_FAILED = int(pytest.ExitCode.TESTS_FAILED)  # the synthetic fleet has the lab's faults


def _key(folder: Path, name: str, passphrase: str = "") -> Path:
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", str(key)],
        check=True,
    )
    return key


def _signers(folder: Path, principal: str, key: Path) -> Path:
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    path = folder / f"allowed-{principal}"
    path.write_text(f"{principal} {kind} {blob}\n")
    return path


def _sign(folder: Path, key: Path) -> None:
    (folder / SIGNATURE).write_bytes(sign_sums(folder / SUMS, str(key)))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Return the CI's key, another key, and an allowed-signers file naming the CI's key."""
    folder = tmp_path_factory.mktemp("keys")
    ci, other = _key(folder, "ci"), _key(folder, "other")
    return {"ci": ci, "other": other, "allowed": _signers(folder, "ci@example.org", ci)}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> list[Path]:
    """Return three synthetic shard bundles, each signed with the CI's key."""
    shards = make_fleet(tmp_path_factory.mktemp("fleet"), 30, 3)
    for folder in shards:
        _sign(folder, keys["ci"])
    return shards


@pytest.fixture
def shards(pristine: list[Path], tmp_path: Path) -> list[Path]:
    """Return copies of the signed shards that a test may change."""
    return [shutil.copytree(f, tmp_path / "in" / f.name) for f in pristine]


def _merge(
    capsys: pytest.CaptureFixture[str], out: Path, shards: list[Path], *options: str | Path
) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["merge", str(out), *map(str, shards), *map(str, options)])
    captured = capsys.readouterr()
    return code, [ln for ln in (captured.out + captured.err).splitlines() if ln]


def test_signed_shards_merge_and_the_record_names_each_signature(
    shards: list[Path], keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fleet"
    code, lines = _merge(capsys, out, shards, "--allowed-signers", keys["allowed"])
    assert code == TESTS_FAILED
    assert lines[1] == (
        f"every shard is signed by an allowed signer (ci@example.org, {keys['allowed']})"
    )
    record = json.loads((out / EVIDENCE).read_text())
    assert [s["signature"] for s in record["merged"]["shards"]] == [
        {"principal": "ci@example.org", "sha256": atomic.sha256_file(f / SIGNATURE)} for f in shards
    ]
    assert not (out / SIGNATURE).exists()  # not asked to sign
    # Without --allowed-signers the shards' signatures are not checked, and not recorded.
    code, _ = _merge(capsys, tmp_path / "unchecked", shards)
    record = json.loads((tmp_path / "unchecked" / EVIDENCE).read_text())
    assert (
        code == TESTS_FAILED and [s["signature"] for s in record["merged"]["shards"]] == [None] * 3
    )


@pytest.mark.parametrize("change", ["unsigned", "other key", "resealed"])
def test_a_shard_not_signed_by_an_allowed_signer_is_refused_with_one_line(
    shards: list[Path],
    keys: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: str,
) -> None:
    folder = shards[1]
    if change == "unsigned":
        (folder / SIGNATURE).unlink()
    elif change == "other key":
        _sign(folder, keys["other"])
    else:  # its files changed and rehashed after it was signed
        (folder / "report.html").write_text("edited")
        (folder / SUMS).write_text(
            atomic.sha256sums(folder, ["report.html", "junit.xml", EVIDENCE])
        )
    out = tmp_path / "fleet"
    code, lines = _merge(capsys, out, shards, "--allowed-signers", keys["allowed"])
    assert code == REFUSED and len(lines) == 1
    expected = {
        "unsigned": f"REFUSED {folder}: not signed (no {SIGNATURE}): with --allowed-signers "
        f"every shard must be signed; run the shards with --hrw-sign-key and a key listed in "
        f"{keys['allowed']}",
        "other key": f"REFUSED {folder}: not signed by an allowed signer: signed by a key that "
        f"is not in {keys['allowed']}",
        "resealed": f"REFUSED {folder}: not signed by an allowed signer: the signature does not "
        "verify over SHA256SUMS for ci@example.org: SHA256SUMS was changed after it was signed",
    }[change]
    assert lines[0].startswith(expected)
    assert not out.exists()


def test_the_merged_bundle_is_signed_as_a_run_signs_its_own(
    shards: list[Path], keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fleet"
    code, lines = _merge(
        capsys, out, shards, "--allowed-signers", keys["allowed"], "--sign-key", keys["ci"]
    )
    assert code == TESTS_FAILED
    assert f"bundle: signed, {out}/{SIGNATURE} (ssh-keygen -Y, hrw-preflight)" in lines
    text = io.StringIO()
    assert verify_main(str(out), text, allowed_signers=str(keys["allowed"])) == 0
    assert text.getvalue().rstrip().endswith("; signed by ci@example.org")
    wrong = _signers(tmp_path, "someone", keys["other"])
    assert verify_main(str(out), io.StringIO(), allowed_signers=str(wrong)) == 1
    # A merged bundle is a shard of nothing: it cannot be merged again, signed or not.
    code, lines = _merge(capsys, tmp_path / "again", [out], "--allowed-signers", keys["allowed"])
    assert code == REFUSED and "not a shard's bundle" in lines[0]


def test_unusable_signing_files_stop_the_merge_before_it_reads_a_shard(
    shards: list[Path], keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = _key(tmp_path, "locked", passphrase="a passphrase")
    out = tmp_path / "fleet"
    shards = [*shards, tmp_path / "not-a-bundle"]  # would be refused too, had it been read
    cases: list[tuple[list[str | Path], str]] = [
        (["--sign-key", locked], f"REFUSED --sign-key {locked}: not an SSH private key usable"),
        (["--sign-key", tmp_path / "nowhere"], f"REFUSED --sign-key {tmp_path / 'nowhere'}: no"),
        (
            ["--allowed-signers", tmp_path / "none"],
            f"REFUSED --allowed-signers {tmp_path / 'none'}: no such file",
        ),
    ]
    for options, start in cases:
        code, lines = _merge(capsys, out, shards, *options)
        assert code == REFUSED and len(lines) == 1 and lines[0].startswith(start), lines
        assert not out.exists()
