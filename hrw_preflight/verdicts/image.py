"""Verdicts for image readiness: tools, Windows prerequisites and clock skew."""

from __future__ import annotations

from hrw_preflight.facts.model import HostFacts
from hrw_preflight.verdicts.base import Settings, Verdict, failed, need, passed
from hrw_preflight.verdicts.registry import check

TOOLS = {
    "python": ("python3", "python2", "python"),
    "openssl": ("openssl",),
    "sudo": ("sudo",),
    "curl": ("curl",),
}
DOTNET_462 = 394802  # the Release value of .NET Framework 4.6.2
MAX_SKEW_S = 15 * 60


@check("HRW-I01")
def linux_tools(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-I01: return whether a command providing ``item`` is on the host's PATH."""
    found = need(facts, "tools")["found"]
    names = TOOLS[item]
    expected = f"one of {', '.join(names)} on the PATH"
    for name in names:
        if name not in found:
            raise KeyError(f"tool {name} was not looked up")
        if found[name]:
            return passed(f"{name} at {found[name]}", expected, "tools")
    return failed(f"none of {', '.join(names)} found on the PATH", expected, "tools")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2])


@check("HRW-I02")
def windows_prerequisites(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-I02: return whether the Windows prerequisite ``item`` holds."""
    pre = need(facts, "prereqs")
    if item == "powershell-5.1":
        version = pre["powershell_version"]
        expected = "Windows PowerShell 5.1"
        ok = version is not None and _version(str(version)) == (5, 1)
        seen = f"PowerShell {version}" if version else "PowerShell version unknown"
    elif item == "dotnet-4.6.2":
        release = pre["dotnet_release"]
        expected = f".NET Framework 4.6.2 or later (Release >= {DOTNET_462})"
        ok = release is not None and int(release) >= DOTNET_462
        seen = (
            f".NET Framework 4.x Release {release}"
            if release is not None
            else ".NET Framework 4.x is not installed (no NDP\\v4\\Full key)"
        )
    elif item == "dotnet-strong-crypto":
        expected = (
            ".NET 4 uses TLS 1.2 in both registry views: SchUseStrongCrypto=1 or "
            "SystemDefaultTlsVersions=1 under .NETFramework\\v4.0.30319 and its WOW6432Node twin"
        )
        views = pre["dotnet_strong_crypto"]
        ok = all(
            1 in (v["sch_use_strong_crypto"], v["system_default_tls_versions"])
            for v in views.values()
        )
        seen = "; ".join(
            f"{name}: "
            + (
                f"SchUseStrongCrypto={v['sch_use_strong_crypto']}, "
                f"SystemDefaultTlsVersions={v['system_default_tls_versions']}"
                if v["exists"]
                else f"no key {v['key']}"
            )
            for name, v in sorted(views.items(), reverse=True)
        )
    else:
        tls = pre["tls12_client"]
        enabled, off_by_default = tls["enabled"], tls["disabled_by_default"]
        expected = "TLS 1.2 client not disabled (Enabled != 0, DisabledByDefault != 1)"
        ok = enabled != 0 and off_by_default != 1
        seen = f"SCHANNEL TLS 1.2 Client Enabled={enabled}, DisabledByDefault={off_by_default}"
    return (passed if ok else failed)(seen, expected, "prereqs")


@check("HRW-I03")
def clock_skew(facts: HostFacts, item: str, settings: Settings) -> Verdict:
    """HRW-I03: return whether the host's clock is within 15 minutes of the controller's.

    The measurement's uncertainty counts in the host's favour: only a skew that is over the
    limit whatever the network delay fails.
    """
    clock = need(facts, "clock")
    skew = float(clock["host_epoch"]) - float(clock["controller_epoch"])
    margin = float(clock["uncertainty_s"])
    expected = f"host clock within {MAX_SKEW_S // 60} minutes of the controller's"
    direction = "ahead of" if skew >= 0 else "behind"
    seen = f"host clock {abs(skew):.0f} s {direction} the controller's (+/- {margin:.1f} s)"
    ok = abs(skew) - margin <= MAX_SKEW_S
    return (passed if ok else failed)(seen, expected, "clock")
