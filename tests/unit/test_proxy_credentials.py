"""Proxy credentials are read as the agent reads them and never reach any output: proxy.conf
(any character but '@' in the password), hrw_proxy, inline --hosts passwords, and short or
numeric secrets that must not mangle the reports."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from hrw_preflight.facts.linux import probe as linux
from hrw_preflight.facts.linux.agent_config import PROXY_CONFS
from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.facts.params import ProbeParams
from hrw_preflight.hosts.errors import ConfigError
from hrw_preflight.hosts.hostspec import split_hosts
from hrw_preflight.hosts.proxy_conf import ProxyFormatError, parse_agent_proxy, proxy_password
from hrw_preflight.hosts.redact import Redactor
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults, Target
from hrw_preflight.report.evidence import load_schema
from tests.linux_samples import BOUNDARY, LinuxHost, Out
from tests.suite_runner import latest, load_evidence, local_facts, run_suite, windows_sections

pytest_plugins = ["pytester"]

HARD = "a#b/c? d:'e\"f;$!"  # every character the agent allows that a URL parser does not
FRAGMENTS = ["a#b", "b/c", "c? d", " d:", ":'e", 'e"f', "f;$!"]


def leaked(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"http://hrwproxy:{HARD}@10.0.0.3:3128", ("http", "hrwproxy", HARD, "10.0.0.3", 3128)),
        (f"hrwproxy:{HARD}@proxy.corp:8080\n", ("http", "hrwproxy", HARD, "proxy.corp", 8080)),
        ("https://u:p-ss:x@h:1", ("https", "u", "p-ss:x", "h", 1)),
        # The agent checks for another scheme with [a-z]+:// only: "socks5" is a user name.
        ("socks5://u:pw@h:1", ("http", "socks5", "//u:pw", "h", 1)),
        ("proxy.corp:3128", ("http", None, None, "proxy.corp", 3128)),
        ("proxy.corp", ("http", None, None, "proxy.corp", None)),
        ("u@corp:pw@h:1", ("http", "u@corp", "pw", "h", 1)),
    ],
)
def test_parsed_as_the_agent_parses_it(
    line: str, expected: tuple[str, str | None, str | None, str, int | None]
) -> None:
    parsed = parse_agent_proxy(line, "proxy.conf")
    assert parsed is not None
    assert (parsed.scheme, parsed.user, parsed.password, parsed.host, parsed.port) == expected
    assert parsed.password is None or parsed.password not in repr(parsed)
    assert parsed.password is None or parsed.password not in parsed.masked_url()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (f"socks://u:{HARD}@h:1", "scheme is not http:// or https://"),
        (f"u:{HARD}@x@h:1", "more than one '@'"),
        (f"u{HARD.replace(':', '')}@h:1", "no ':' between user and"),
        (f"u:{HARD}@h:31x", "the port after the host is not a number"),
        (f":{HARD}@h:1", "the user or the password before '@' is empty"),
        (f"u:{HARD}@h:1\r\n", "carriage return"),
        (f"u:{HARD}@$(touch x):1", "the proxy host is not a host name"),
    ],
)
def test_what_the_agent_refuses_is_one_line_without_the_credentials(line: str, why: str) -> None:
    with pytest.raises(ProxyFormatError) as info:
        parse_agent_proxy(line, "/etc/opt/microsoft/omsagent/proxy.conf")
    message = str(info.value)
    assert message.startswith("/etc/opt/microsoft/omsagent/proxy.conf: ") and why in message
    assert "\n" not in message and not leaked(message) and "touch" not in message


def test_linux_probe_reads_proxy_conf_as_the_agent_and_shows_no_credentials() -> None:
    host = LinuxHost(proxy=f"http://hrwproxy:{HARD}@10.0.0.3:3128")
    output = host.facts_output()
    sections = linux.parse_facts(Out(output), ProbeParams(), host.window(), boundary=BOUNDARY)
    worker = sections["worker"]
    assert worker.data is not None and worker.data["proxy"] == {
        "url": "http://hrwproxy:***@10.0.0.3:3128",
        "host": "10.0.0.3",
        "port": 3128,
        "has_credentials": True,
        "path": PROXY_CONFS[0],
    }
    for section in sections.values():
        assert not leaked(section.raw + str(section.error) + json.dumps(section.data))
    assert linux.proxy_conf_secrets(output, BOUNDARY) == [HARD]


def test_a_malformed_proxy_conf_is_an_error_naming_the_file_and_never_shown() -> None:
    host = LinuxHost(proxy=f"http://hrwproxy:{HARD}@x@10.0.0.3:3128")
    sections = linux.parse_facts(
        Out(host.facts_output()), ProbeParams(), host.window(), boundary=BOUNDARY
    )
    worker = sections["worker"]
    assert worker.data is None
    assert f"{PROXY_CONFS[0]}: more than one '@'" in str(worker.error)
    for section in sections.values():
        assert not leaked(section.raw + str(section.error))


def test_hrw_proxy_is_read_the_agent_way_and_its_password_registered() -> None:
    target = Target(
        "w1", "linux", "ssh", "w1", overrides={"hrw_proxy": f"http://px:{HARD}@10.0.0.3:3128"}
    )
    redact = Redactor()
    redact.add_target(target)
    assert redact(f"echo {HARD}") == "echo ***"
    assert proxy_password(f"px:{HARD}@x@h:1") == f"{HARD}@x"  # malformed: still masked
    worker = {"proxy": None, "endpoints": {"agentsvc": "a.example"}}
    _roles, proxy, creds = linux.network_plan(
        worker, ProbeParams(proxy=f"http://px:{HARD}@10.0.0.3:3128")
    )
    assert proxy == "10.0.0.3:3128" and creds == ""
    with pytest.raises(ProxyFormatError, match=r"^inventory value hrw_proxy: ") as info:
        linux.network_plan(worker, ProbeParams(proxy=f"px:{HARD}@h:x1"))
    assert not leaked(str(info.value))


@pytest.mark.parametrize(
    ("spec", "password", "host"),
    [
        ("winrm://svc:Pa?ss@win1", "Pa?ss", "win1"),
        ("winrm://svc:Pa#ss/x@win1:5985?no_ssl=true", "Pa#ss/x", "win1"),
        ("winrm://svc:P@ss@win1", "P@ss", "win1"),
        ("winrm://svc:pa,ss@win1", "pa,ss", "win1"),
    ],
)
def test_inline_passwords_split_on_the_last_at_and_keep_their_commas(
    spec: str, password: str, host: str
) -> None:
    [target] = parse_hosts_option([spec], [], HostDefaults())
    assert target.password is not None and target.password.reveal() == password
    assert target.address == host
    assert password not in target.source + target.hostspec()


def test_commas_between_hosts_still_split() -> None:
    assert split_hosts(["winrm://svc:pa,ss@win1,ssh://root@l1,worker3", "local://"]) == [
        "winrm://svc:pa,ss@win1",
        "ssh://root@l1",
        "worker3",
        "local://",
    ]
    with pytest.raises(ConfigError, match="could be part of a password") as info:
        split_hosts(["winrm://svc:1234,5678@win1"])
    assert "5678" not in str(info.value) and "1234" not in str(info.value)


@pytest.mark.parametrize(
    "spec",
    [
        "winrm://svc:Pa?ss@win1:99999",
        "winrm://svc:Pa?ss@win1?bogus=1",
        "winrm://svc:pa,ss@win1?transport=smoke",
        "ftp://svc:Pa?ss@win1",
    ],
)
def test_errors_about_a_spec_never_echo_its_password(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_hosts_option([spec], [], HostDefaults())
    message = str(info.value)
    assert "svc:***@win1" in message and "Pa" not in message and "pa,ss" not in message


def test_no_part_of_a_proxy_conf_password_reaches_any_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"local": local_facts(LinuxHost(proxy=f"hrwproxy:{HARD}@10.0.0.3:3128"))}
    result = run_suite(pytester, monkeypatch, facts, ["--hosts=local://", "-rA"])
    folder = latest(pytester)
    outputs = {
        "terminal": result.stdout.str() + result.stderr.str(),
        **{p.name: p.read_text() for p in folder.iterdir()},
    }
    # The run id ends in random hex: "...7b/checks.html" would look like the fragment "b/c".
    outputs = {name: text.replace(folder.name, "<run-id>") for name, text in outputs.items()}
    assert "hrwproxy:***@10.0.0.3:3128" in outputs["evidence.json"]
    for name, text in outputs.items():
        assert not leaked(text), name
    for name in ("report.html", "checks.html", "junit.xml"):  # also as HTML/XML escape them
        text = outputs[name].replace("&#x27;", "'").replace("&quot;", '"').replace("&#39;", "'")
        assert not leaked(text.replace("&amp;", "&")), name


def test_a_short_numeric_secret_does_not_mangle_the_reports(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WinRM password "2026" in the year 2026: timestamps stay timestamps, the record
    stays valid, and no mask shows where the password would be."""
    inventory = pytester.path / "inv.yml"
    inventory.write_text(
        "all:\n  hosts:\n    win1:\n      ansible_host: 192.0.2.7\n"
        "      ansible_connection: winrm\n      ansible_user: svc\n"
        "      ansible_password: '2026'\n"
        "      hrw_proxy: 'http://px:2026@10.0.0.3:3128'\n"
    )
    sections = windows_sections()
    sections["clock"] = Section("clock", None, "unread in 2026", raw="year 2026 port 12026")
    run_suite(
        pytester,
        monkeypatch,
        {"win1": HostFacts("win1", "windows", sections)},
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-k", "HRW-W01"],
    )
    record = load_evidence(latest(pytester))
    jsonschema.validate(record, load_schema())
    assert record["started_at"].startswith("20") and "***" not in record["started_at"]
    html = (latest(pytester) / "report.html").read_text()
    assert "***-" not in html and "***" not in record["finished_at"]
    text = Path(latest(pytester) / "evidence.json").read_text()
    assert "2026" in text and "px:2026@" not in text


def test_the_collector_hands_proxy_conf_passwords_to_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered before any check of the host reports: an echo elsewhere is masked too."""
    import hrw_preflight.facts.collector as collector

    host = LinuxHost(proxy=f"hrwproxy:{HARD}@10.0.0.3:3128")

    class Runner:
        def __init__(self, _: object) -> None:
            self.count = 0

        def __call__(self, command: str, *args: str) -> Out:
            self.count += 1
            if self.count == 1:  # the facts command: its output framed with the run's boundary
                host.boundary = args[1]
                return Out(host.facts_output())
            return Out(f"a.example|connect: {HARD} refused\na.example|@@RC 1\n", rc=0)

    monkeypatch.setattr(collector, "_CountingRunner", Runner)
    target = Target("local", "linux", "local", "localhost")
    facts = collector.probe_host(target, object(), ProbeParams())
    assert facts.secrets == [HARD] and HARD not in repr(facts)
