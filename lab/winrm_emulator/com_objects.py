"""COM classes an emulated host has, and how Windows PowerShell 5.1 fails on anything else.

The emulator does not run PowerShell, so it reads a known probe block's text for what it
asks of a COM object: ``$x = New-Object -ComObject '<ProgID>'``, then ``$x.Name(...)``
(a method call) and ``$x.Name`` (a property read). Each name is checked against the members
the class is modelled with here, case-insensitively as PowerShell binds them, so a wrong
member name in the probe fails the way it would on a real host instead of getting an
answer from the lab profile:

- an unregistered ProgID: New-Object's ``NoCOMClassIdentified`` (ResourceUnavailable) with
  .NET's REGDB_E_CLASSNOTREG text (PowerShell's NewObjectCommand: CLSIDFromProgID fails,
  the empty CLSID cannot be instantiated, the COMException is reported under that id);
- a method the object lacks: ``MethodNotFound`` (InvalidOperation), always;
- a property the object lacks: ``$null`` without error, unless strict mode (version 2 or
  later) is on in the scope that reads it: then ``PropertyNotFoundStrict``.

Members are those that public scripts use on the class (see docs/windows-probe-sources.md);
the list is the emulator's model, not Microsoft's type library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CLASS_NOT_REGISTERED = (
    "Retrieving the COM class factory for component with CLSID "
    "{00000000-0000-0000-0000-000000000000} failed due to the following error: 80040154 "
    "Class not registered (Exception from HRESULT: 0x80040154 (REGDB_E_CLASSNOTREG))."
)


@dataclass(frozen=True)
class ComClass:
    """A COM class as the emulator models it: its ProgID and member names (lower case)."""

    prog_id: str
    methods: frozenset[str]
    properties: frozenset[str]


MGMT_SVC_CFG = ComClass(
    "AgentConfigManager.MgmtSvcCfg",
    methods=frozenset(
        name.lower()
        for name in (
            "AddCloudWorkspace",
            "GetCloudWorkspace",
            "GetCloudWorkspaces",
            "RemoveCloudWorkspace",
            "ReloadConfiguration",
            "SetProxyInfo",
            "SetProxyUrl",
            "SetProxyCredentials",
        )
    ),
    properties=frozenset(("proxyurl", "proxyusername")),
)


@dataclass(frozen=True)
class ComFailure:
    """How a reference to a COM object failed: PowerShell's error id, category and text."""

    error_id: str
    category: str
    message: str
    in_strict_scope: bool


@dataclass(frozen=True)
class MemberUse:
    """One ``$variable.Member`` in the code: its name, whether called, and where."""

    name: str
    called: bool
    line: int
    strict: bool


_CREATE = re.compile(r"\$(?P<var>\w+)\s*=\s*New-Object\s+-ComObject\s+'(?P<progid>[^']+)'", re.I)
_STRICT = re.compile(r"Set-StrictMode\s+-Version\s+(?P<version>[\d.]+|Latest)", re.I)


def _strict_lines(lines: list[str]) -> set[int]:
    """Return the indexes of lines inside a scriptblock that turned strict mode (>= 2) on.

    The scope is the ``{ ... }`` that holds the Set-StrictMode line, found by brace depth.
    """
    inside: set[int] = set()
    for index, line in enumerate(lines):
        found = _STRICT.search(line)
        if not found or (found.group("version") != "Latest" and float(found.group("version")) < 2):
            continue
        depth = 0
        for later in range(index, len(lines)):
            depth += lines[later].count("{") - lines[later].count("}")
            if depth < 0:
                break
            inside.add(later)
    return inside


def member_uses(code: str, variable: str) -> list[MemberUse]:
    """Return every ``$variable.Member`` in ``code``, in order."""
    lines = code.replace("\r\n", "\n").split("\n")
    strict = _strict_lines(lines)
    use = re.compile(rf"\${re.escape(variable)}\.(?P<name>\w+)(?P<call>\s*\()?", re.I)
    return [
        MemberUse(m.group("name"), bool(m.group("call")), index, index in strict)
        for index, line in enumerate(lines)
        for m in use.finditer(line)
    ]


def created_objects(code: str) -> list[tuple[str, str]]:
    """Return ``(variable, ProgID)`` for each ``New-Object -ComObject`` in ``code``."""
    return [(m.group("var"), m.group("progid")) for m in _CREATE.finditer(code)]


def check(code: str, registered: dict[str, ComClass]) -> ComFailure | None:
    """Return the first failure PowerShell 5.1 would raise for the COM use in ``code``.

    ``registered`` maps lower-case ProgIDs to the classes the host has. None when every
    object is created and every member exists (or is a lenient property read).
    """
    for variable, prog_id in created_objects(code):
        cls = registered.get(prog_id.lower())
        if cls is None:
            return ComFailure(
                "NoCOMClassIdentified,Microsoft.PowerShell.Commands.NewObjectCommand",
                "ResourceUnavailable",
                CLASS_NOT_REGISTERED,
                False,
            )
        for use in member_uses(code, variable):
            name = use.name.lower()
            if use.called and name not in cls.methods:
                return ComFailure(
                    "MethodNotFound",
                    "InvalidOperation",
                    "Method invocation failed because [System.__ComObject] does not contain "
                    f"a method named '{use.name}'.",
                    use.strict,
                )
            if not use.called and name not in cls.properties and use.strict:
                return ComFailure(
                    "PropertyNotFoundStrict",
                    "InvalidOperation",
                    f"The property '{use.name}' cannot be found on this object. Verify that "
                    "the property exists.",
                    True,
                )
    return None
