"""Sharded runs: ``--hrw-shard K/N`` and the CI's variables pick the hosts a run checks.

The selection is tested on its own (stable hash, parsing, CI variables) and through the real
plugin with pytester: only the shard's hosts are collected, probed and reported, and the run
record says which shard of how many and the hash of the full host list.
"""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import pytest

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.shards import Shard, host_list_sha256, read_shard, shard_of
from hrw_preflight.hosts.targets import Target
from hrw_preflight.report.evidence import schema_errors
from hrw_preflight.report.verify import verify_bundle
from tests.linux_samples import LinuxHost
from tests.suite_runner import (
    PLUGINS,
    SUITE,
    latest,
    load_evidence,
    local_facts,
    local_inventory,
    run_suite,
)

pytest_plugins = ["pytester"]

HOSTS = ("a", "b", "c", "d", "e", "f")
GITLAB = ("CI_NODE_INDEX", "CI_NODE_TOTAL")
AZURE = ("SYSTEM_JOBPOSITIONINPHASE", "SYSTEM_TOTALJOBSINPHASE")


def test_a_hosts_shard_depends_on_its_name_alone() -> None:
    names = [f"worker-{i:04d}" for i in range(600)]
    first = {n: shard_of(n, 3) for n in names}
    assert {n: shard_of(n, 3) for n in reversed(names)} == first  # order and company do not matter
    assert set(first.values()) == {1, 2, 3}
    assert all(140 <= n <= 260 for n in Counter(first.values()).values())  # roughly even
    assert all(shard_of(n, 1) == 1 for n in names)
    # Pinned values: a change of hash would split a fleet differently from older shards.
    assert [shard_of(n, 3) for n in "abcdef"] == [2, 2, 3, 3, 3, 1]


def test_host_list_hash_ignores_order_and_sees_any_change() -> None:
    assert host_list_sha256(["a", "b"]) == host_list_sha256(["b", "a"])
    assert host_list_sha256(["a", "b"]) != host_list_sha256(["a", "b", "c"])
    assert host_list_sha256(["a,b"]) != host_list_sha256(["a", "b"])


def test_read_shard_takes_the_option_first_then_gitlab_then_azure() -> None:
    gitlab = {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}
    azure = {"SYSTEM_JOBPOSITIONINPHASE": "1", "SYSTEM_TOTALJOBSINPHASE": "4"}
    assert read_shard(None, {}) is None
    assert read_shard("2/5", gitlab) == Shard(2, 5, "--hrw-shard")
    assert read_shard(" 1 / 1 ", {}) == Shard(1, 1, "--hrw-shard")  # explicit 1/1 is kept
    assert read_shard("none", gitlab) is None and read_shard("OFF", azure) is None
    assert read_shard(None, gitlab) == Shard(2, 3, "CI_NODE_INDEX/CI_NODE_TOTAL")
    assert read_shard(None, azure) == Shard(
        1, 4, "SYSTEM_JOBPOSITIONINPHASE/SYSTEM_TOTALJOBSINPHASE"
    )
    assert read_shard(None, {**azure, **gitlab}) == Shard(2, 3, "/".join(GITLAB))
    # GitLab sets CI_NODE_TOTAL=1 on every job; a job that is not split checks every host.
    assert read_shard(None, {"CI_NODE_TOTAL": "1"}) is None
    assert read_shard(None, {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "1"}) is None
    assert read_shard(None, {"CI_NODE_INDEX": "", "CI_NODE_TOTAL": "3"}) is None


@pytest.mark.parametrize(
    ("option", "env", "message"),
    [
        ("3", {}, "--hrw-shard '3': not a shard K of N: use K/N with 1 <= K <= N"),
        ("0/3", {}, "--hrw-shard '0/3': shard 0 of 3 does not exist: use K/N"),
        ("4/3", {}, "--hrw-shard '4/3': shard 4 of 3 does not exist"),
        ("1/0", {}, "--hrw-shard '1/0': shard 1 of 0 does not exist"),
        ("-1/3", {}, "not a shard K of N"),
        (None, {"CI_NODE_INDEX": "x", "CI_NODE_TOTAL": "3"}, "CI_NODE_INDEX='x', CI_NODE_TOTAL"),
        (
            None,
            {"SYSTEM_JOBPOSITIONINPHASE": "5", "SYSTEM_TOTALJOBSINPHASE": "4"},
            "SYSTEM_JOBPOSITIONINPHASE='5', SYSTEM_TOTALJOBSINPHASE='4': shard 5 of 4 does not "
            "exist: both must be whole numbers, 1 <= index <= total; or pass --hrw-shard K/N",
        ),
    ],
)
def test_bad_shard_values_are_one_line_errors(
    option: str | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        read_shard(option, env)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def _facts() -> dict[str, HostFacts]:
    return {n: local_facts(LinuxHost(agent=n not in ("a", "d"))) for n in HOSTS}


def _run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    probed: list[str] | None = None,
) -> pytest.RunResult:
    facts = _facts()

    def probe(name: str) -> object:
        def record(target: Target) -> HostFacts:
            if probed is not None:
                probed.append(target.name)
            return facts[name]

        return record

    inventory = local_inventory(pytester, *HOSTS)
    if probed is not None:  # probe in this process (a probe process's list is its own)
        args = ("--hrw-parallel=0", *args)
    return run_suite(
        pytester,
        monkeypatch,
        {n: probe(n) for n in HOSTS},  # type: ignore[misc]
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-k", "HRW-L02", *args],
    )


def _hosts_checked(folder: Path) -> dict[str, str]:
    return {c["host"]: c["outcome"] for c in load_evidence(folder)["checks"]}


def test_a_shard_collects_probes_and_reports_only_its_hosts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []
    result = _run(pytester, monkeypatch, "--hrw-shard", "3/3", probed=probed)
    result.assert_outcomes(passed=2, failed=1)
    assert sorted(probed) == ["c", "d", "e"]
    result.stdout.fnmatch_lines(
        ["hrw-preflight: shard 3 of 3 (from --hrw-shard): 3 of the 6 host(s) named*"]
    )
    folder = latest(pytester)
    record = load_evidence(folder)
    assert schema_errors(record) == []
    assert record["shard"] == {"index": 3, "total": 3, "source": "--hrw-shard"}
    assert record["inventory"]["host_count"] == 6
    assert record["inventory"]["host_list_sha256"] == host_list_sha256(HOSTS)
    assert sorted(record["hosts"]) == ["c", "d", "e"]
    assert sorted(record["inventory"]["sources"]) == ["c", "d", "e"]
    assert _hosts_checked(folder) == {"c": "passed", "d": "failed", "e": "passed"}
    for name in ("checks.html", "junit.xml"):
        text = (folder / name).read_text()
        assert "[d:HRW-L02:omsagent]" in text and "[a:HRW-L02:omsagent]" not in text
    page = (folder / "report.html").read_text()
    assert '<td class="h">d</td>' in page and '<td class="h">a</td>' not in page
    verdict = verify_bundle(folder)
    assert verdict.ok and any("shard 3 of 3" in w for w in verdict.warnings)


def test_the_shards_together_check_every_host_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    hashes = set()
    for index in (1, 2, 3):
        _run(pytester, monkeypatch, f"--hrw-shard={index}/3")
        record = load_evidence(latest(pytester))
        checked.extend(_hosts_checked(latest(pytester)))
        hashes.add(record["inventory"]["host_list_sha256"])
    assert sorted(checked) == sorted(HOSTS) and len(hashes) == 1


@pytest.mark.parametrize("names", [GITLAB, AZURE], ids=["gitlab", "azure"])
def test_ci_variables_pick_the_same_hosts_as_the_option(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, names: tuple[str, str]
) -> None:
    for index in (1, 2, 3):
        _run(pytester, monkeypatch, f"--hrw-shard={index}/3")
        by_option = _hosts_checked(latest(pytester))
        monkeypatch.setenv(names[0], str(index))
        monkeypatch.setenv(names[1], "3")
        result = _run(pytester, monkeypatch)
        result.stdout.fnmatch_lines([f"*shard {index} of 3 (from {names[0]}/{names[1]})*"])
        assert _hosts_checked(latest(pytester)) == by_option
        assert load_evidence(latest(pytester))["shard"]["source"] == f"{names[0]}/{names[1]}"
    # --hrw-shard none overrides the CI's variables: every host is checked.
    _run(pytester, monkeypatch, "--hrw-shard=none")
    assert sorted(_hosts_checked(latest(pytester))) == sorted(HOSTS)
    assert load_evidence(latest(pytester))["shard"] is None


def test_an_unsharded_run_records_no_shard_but_the_host_list(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_NODE_TOTAL", "1")  # what GitLab sets on a job without parallel:
    result = _run(pytester, monkeypatch)
    result.assert_outcomes(passed=4, failed=2)
    record = load_evidence(latest(pytester))
    assert record["shard"] is None and record["merged"] is None
    assert record["inventory"]["host_list_sha256"] == host_list_sha256(HOSTS)
    assert "hrw-preflight: shard" not in result.stdout.str()
    assert verify_bundle(latest(pytester)).warnings == []


def test_a_shard_without_hosts_ends_green_with_a_sealed_bundle(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"local": local_facts(LinuxHost())}
    assert shard_of("local", 2) == 1
    result = run_suite(
        pytester, monkeypatch, facts, ["--hosts=local://", "--hrw-shard=2/2", "-k", "HRW-L02"]
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*shard 2 of 2 (from --hrw-shard): 0 of the 1 host(s)*"])
    folder = latest(pytester)
    record = load_evidence(folder)
    assert record["status"] == "complete" and record["hosts"] == {} and record["checks"] == []
    assert record["gate"]["exit"] == 0
    assert verify_bundle(folder).ok


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (["--hrw-shard=2"], {}, "ERROR: --hrw-shard '2': not a shard K of N: use K/N*"),
        (
            [],
            {"CI_NODE_INDEX": "4", "CI_NODE_TOTAL": "3"},
            "ERROR: CI_NODE_INDEX='4', CI_NODE_TOTAL='3': shard 4 of 3 does not exist*",
        ),
    ],
)
def test_bad_shard_input_stops_the_run_with_one_line(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    line: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    probed: list[str] = []
    result = _run(pytester, monkeypatch, *args, probed=probed)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and not probed
    result.stderr.fnmatch_lines([line])
    assert len([ln for ln in result.stderr.lines if ln.startswith("ERROR")]) == 1


def test_under_xdist_every_worker_keeps_only_the_shards_hosts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_NODE_INDEX", "3")  # the workers read it too
    monkeypatch.setenv("CI_NODE_TOTAL", "3")
    for path in SUITE.glob("test_*.py"):
        pytester.makepyfile(**{path.stem: path.read_text()})
    facts = pytester.path / "facts.pickle"
    facts.write_bytes(pickle.dumps(_facts()))
    pytester.makeconftest(f"""
import pickle
import hrw_preflight.facts.collector

FACTS = pickle.loads(open({str(facts)!r}, "rb").read())
hrw_preflight.facts.collector.probe_host = lambda target, host, params: FACTS[target.name]
""")
    inventory = local_inventory(pytester, *HOSTS)
    result = pytester.runpytest_subprocess(
        *PLUGINS,
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        f"--ansible-inventory={inventory}",
        "--hosts=ansible://all",
        "-k",
        "HRW-L02",
        "--hrw-reports",
        str(pytester.path / "reports"),
    )
    result.assert_outcomes(passed=2, failed=1)
    record = load_evidence(latest(pytester))
    assert record["shard"] == {"index": 3, "total": 3, "source": "CI_NODE_INDEX/CI_NODE_TOTAL"}
    assert _hosts_checked(latest(pytester)) == {"c": "passed", "d": "failed", "e": "passed"}
