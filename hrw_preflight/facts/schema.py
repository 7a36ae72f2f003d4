"""The shape of every fact section, declared once for both platforms.

Each section's ``data`` is a TypedDict here. Both platforms' parsers return data of these
shapes, the verdicts read them through :func:`section_data` (typed per section name, so mypy
checks every key a verdict uses), and :func:`conform` checks them at run time where the
parsers hand sections on: a shape error becomes that section's error naming the section and
the field, never a pass and never a crash. docs/design.md section 1 is checked against this
module by a test, and so are the recorded Windows outputs and the Linux samples.
"""

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, Union, get_args, get_origin, overload

from hrw_preflight.facts.ext_schema import (
    ArcAclFacts,
    ArcFacts,
    ExtensionFacts,
    IdentityFacts,
    KindFacts,
    RemnantFacts,
    ServiceFacts,
)
from hrw_preflight.facts.model import HostFacts, Section

Role = Literal["agentsvc", "jrds", "oms", "ods", "ext-jrds", "ext-agentsvc", "arc-his", "arc-login"]
Tcp = Literal[
    "ok", "timeout", "refused", "unreachable", "unresolved", "proxy-refused", "failed", "error"
]
Tls = Literal["ok", "failed", "not-attempted", "timed out"]


class HardwareData(TypedDict):
    """Logical processors and installed memory."""

    logical_processors: int
    memory_bytes: int


class PressureData(TypedDict):
    """CPU load as a share of capacity (0..1 and above) and memory available now."""

    cpu_load: float
    cpu_window_s: NotRequired[float]  # Windows: the counter sample's length
    memory_available_bytes: int
    memory_total_bytes: int


class ProxyData(TypedDict):
    """The agent's proxy, password masked; ``path`` is the proxy.conf read (Linux)."""

    url: str
    host: str
    port: int
    has_credentials: bool
    path: NotRequired[str]


class EndpointsData(TypedDict):
    """Endpoint host names by role (no scheme); None where none was found."""

    agentsvc: str | None
    jrds: str | None
    oms: str | None
    ods: NotRequired[str | None]


WorkerConfPaths = TypedDict("WorkerConfPaths", {"auto-registered": str | None, "user": str | None})


class OmsConfKeys(TypedDict):
    """Which worker keys oms.conf holds, as Microsoft's DSC test reads them (Linux)."""

    exists: bool
    worker_conf_section: bool
    auto_registered: bool
    manually_registered: bool


class AutoWorkerConf(TypedDict):
    """The auto-registered worker's worker.conf: present, and its JRDS certificate (Linux)."""

    exists: bool
    jrds_cert_thumbprint: str | None


class WorkerData(TypedDict):
    """The worker's registration: workspace, version, which workers, proxy, endpoints."""

    workspace_id: str | None
    version: str | None
    update_management: bool
    user_worker: bool
    proxy: ProxyData | None
    proxy_error: NotRequired[str | None]  # Windows: why the agent's proxy could not be read
    endpoints: EndpointsData
    workspaces: list[str] | None
    # Linux only (HRW-L04, Microsoft's DSC health test):
    worker_conf_paths: NotRequired[WorkerConfPaths]
    primary_workspace_id: NotRequired[str | None]
    oms_conf: NotRequired[OmsConfKeys]
    auto_worker_conf: NotRequired[AutoWorkerConf]


class EndpointResult(TypedDict):
    """TCP 443 and TLS from the host to one endpoint, and the chain it received."""

    role: Role
    via_proxy: str | None
    tcp: Tcp
    tls: Tls
    detail: str
    chain_pem: list[str]
    # Windows: which chain ``chain_pem`` is (sent by the server, or built by Windows when
    # only the leaf came), the built chain, its status and SslPolicyErrors.
    chain_source: NotRequired[Literal["sent", "built", "none"]]
    chain_built_pem: NotRequired[list[str]]
    chain_status: NotRequired[list[str]]
    policy_errors: NotRequired[str | None]


NetworkData = dict[str, EndpointResult]  # endpoint host -> result


class ProcessData(TypedDict):
    """One agent or worker process."""

    pid: int
    uid: int
    user: str
    args: str


class ProcessesData(TypedDict):
    """Agent and worker processes, and the uid of each account asked for (None: absent)."""

    processes: list[ProcessData]
    users: dict[str, int | None]


class OmsconfigLogData(TypedDict):
    """Lines of omsconfig.log saying ``The specified class does not exist..``."""

    path: str
    exists: bool
    matches: list[str]
    bytes_scanned: int


class DscSettings(TypedDict):
    """The nxOMSAutomationWorker resource's settings in Current.mof."""

    workspace_id: str
    azure_dns_agent_svc_zone: str | None
    updates_enabled: bool
    automation_enabled: bool


class DscConfigData(TypedDict):
    """Current.mof as the agent's DSC keeps it (Linux)."""

    path: str
    exists: bool
    encoding: Literal["utf-16-le", "utf-8"] | None
    settings: DscSettings | None


class OmsCertData(TypedDict):
    """The agent's certificate oms.crt: SHA-1 thumbprint (upper-case hex) and subject."""

    path: str
    exists: bool
    sha1: str | None
    subject: str | None


class ToolsData(TypedDict):
    """Path of each tool looked up on the host (None: not found)."""

    found: dict[str, str | None]


class Tls12ClientData(TypedDict):
    """SCHANNEL's TLS 1.2 client values (None: absent)."""

    enabled: int | None
    disabled_by_default: int | None


class StrongCryptoView(TypedDict):
    """.NET's strong-crypto values in one registry view."""

    key: str
    exists: bool
    sch_use_strong_crypto: int | None
    system_default_tls_versions: int | None


class PrereqsData(TypedDict):
    """PowerShell version, .NET 4 release number, .NET strong crypto by registry view
    (64-bit, 32-bit) and TLS 1.2 client settings."""

    powershell_version: str | None
    dotnet_release: int | None
    dotnet_strong_crypto: dict[str, StrongCryptoView]
    tls12_client: Tls12ClientData


class ClockData(TypedDict):
    """The host's UTC clock against the controller's, with the uncertainty of the reading."""

    host_epoch: float
    controller_epoch: float
    uncertainty_s: float


class ServiceData(TypedDict):
    """The HealthService: Win32_Service's State and StartMode (None: no such service)."""

    exists: bool
    name: str
    state: str | None
    start_mode: str | None


class EventData(TypedDict):
    """One event log record."""

    id: int
    provider: str
    level: int
    time: str
    message: str
    message_error: NotRequired[str | None]  # Windows: why the message text could not be read


class EventsData(TypedDict):
    """Events of the asked ids within the look-back window, newest first, by log."""

    lookback_hours: float
    logs: dict[str, list[EventData]]
    missing_logs: dict[str, str]  # log -> why: it does not exist on the host
    unreadable_logs: dict[str, str]  # log -> why it could not be read


SectionName = Literal[
    "hardware",
    "pressure",
    "worker",
    "network",
    "processes",
    "omsconfig_log",
    "dsc_config",
    "oms_cert",
    "tools",
    "prereqs",
    "clock",
    "service",
    "events",
    "kind",
    "extension",
    "ext_service",
    "arc",
    "identity",
    "remnants",
    "arc_acl",
]


@dataclass(frozen=True)
class SectionSpec:
    """One section: its data shape, the platforms whose probe produces it, and a note on
    what the data means (shown in docs/design.md section 1)."""

    shape: Any
    platforms: tuple[str, ...]
    note: str = ""


BOTH = ("linux", "windows")
SCHEMA: dict[str, SectionSpec] = {
    "hardware": SectionSpec(HardwareData, BOTH),
    "pressure": SectionSpec(
        PressureData,
        BOTH,
        "`cpu_load` is the share of CPU capacity in use: 1-minute load average divided by "
        "logical processors on Linux, `Win32_Processor.LoadPercentage` averaged over sockets "
        "/ 100 on Windows",
    ),
    "worker": SectionSpec(
        WorkerData,
        BOTH,
        "endpoints are host names, no scheme; the proxy's password is replaced by `***`; "
        "`workspaces`: the workspaces the agent reports to, sorted (Linux: folders of 32+ "
        "characters under `/var/opt/microsoft/omsagent`, None when they could not be listed; "
        "Windows: the MMA's `GetCloudWorkspaces()`)",
    ),
    "network": SectionSpec(
        NetworkData, BOTH, "by endpoint host; `chain_pem` is the chain received, leaf first"
    ),
    "processes": SectionSpec(
        ProcessesData, ("linux",), "only agent and worker processes; `users`: uid by account"
    ),
    "omsconfig_log": SectionSpec(
        OmsconfigLogData,
        ("linux",),
        "`matches`: lines with `The specified class does not exist..` in the last "
        "`bytes_scanned` bytes",
    ),
    "dsc_config": SectionSpec(
        DscConfigData,
        ("linux",),
        "the nxOMSAutomationWorker settings of Current.mof (UTF-16-LE or UTF-8)",
    ),
    "oms_cert": SectionSpec(
        OmsCertData, ("linux",), "thumbprint computed on the controller; `oms.key` is never read"
    ),
    "tools": SectionSpec(
        ToolsData, ("linux",), "python3, python2, python, openssl, sudo, curl: path or None"
    ),
    "prereqs": SectionSpec(PrereqsData, ("windows",), "None: key or value absent"),
    "clock": SectionSpec(
        ClockData,
        BOTH,
        "the host's UTC clock, the midpoint of the controller's clock around the command that "
        "read it, and half that command's duration plus 1 s",
    ),
    "service": SectionSpec(
        ServiceData,
        ("windows",),
        "Win32_Service State (`Running`, `Stopped`, ...) and StartMode (`Auto`, `Manual`, ...)",
    ),
    "events": SectionSpec(
        EventsData,
        ("windows",),
        "logs `Operations Manager` and `Microsoft-SMA/Operational`; `time` is ISO 8601 UTC; a "
        "log that does not exist or cannot be read makes the section an error",
    ),
    # Worker kinds and the extension-based worker: shapes in hrw_preflight/facts/ext_schema.py.
    "kind": SectionSpec(
        KindFacts, BOTH, "derived from the other sections (hrw_preflight/facts/kind.py)"
    ),
    "extension": SectionSpec(ExtensionFacts, BOTH, "the hybrid worker extension"),
    "ext_service": SectionSpec(ServiceFacts, BOTH, "the extension-based worker's service"),
    "arc": SectionSpec(ArcFacts, BOTH, "the Azure Connected Machine agent"),
    "identity": SectionSpec(IdentityFacts, BOTH, "IMDS and the Arc identity endpoint"),
    "remnants": SectionSpec(RemnantFacts, BOTH, "leftovers of each worker kind"),
    "arc_acl": SectionSpec(ArcAclFacts, ("windows",), "the custom credential's grants"),
}


class ShapeError(ValueError):
    """Data that does not have its section's declared shape; the message names the field."""


def _is_typeddict(shape: Any) -> bool:
    return isinstance(shape, type) and typing.is_typeddict(shape)


def _describe(shape: Any) -> str:
    if shape is type(None):
        return "null"
    if _is_typeddict(shape):
        return "an object"
    origin = get_origin(shape)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(shape))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(shape))
    if origin is list:
        return "a list"
    if origin is dict:
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        shape, str(shape)
    )


def check_shape(value: Any, shape: Any, where: str) -> None:
    """Raise :class:`ShapeError` naming the field at ``where`` when ``value`` is not ``shape``.

    Supports what the schema uses: TypedDicts (NotRequired keys), ``list[X]``,
    ``dict[str, X]``, ``Literal``, unions and the JSON scalars (an int is a number; a bool
    is not an int).
    """
    origin = get_origin(shape)
    if _is_typeddict(shape):
        if not isinstance(value, dict):
            raise ShapeError(f"field '{where}' is {_kind(value)}, expected an object")
        hints = typing.get_type_hints(shape)
        required = shape.__required_keys__
        for key in value:
            if key not in hints:
                raise ShapeError(f"field '{_join(where, key)}' is not in the schema")
        for key, hint in hints.items():
            if key not in value:
                if key in required:
                    raise ShapeError(f"field '{_join(where, key)}' is missing")
                continue
            check_shape(value[key], hint, _join(where, key))
        return
    if origin in (Union, types.UnionType):
        for option in get_args(shape):
            try:
                check_shape(value, option, where)
                return
            except ShapeError:
                continue
        raise ShapeError(f"field '{where}' is {_kind(value)}, expected {_describe(shape)}")
    if origin is Literal:
        if value not in get_args(shape) or isinstance(value, bool):
            raise ShapeError(f"field '{where}' is {value!r}, expected {_describe(shape)}")
        return
    if origin is list:
        if not isinstance(value, list):
            raise ShapeError(f"field '{where}' is {_kind(value)}, expected a list")
        (item,) = get_args(shape)
        for index, element in enumerate(value):
            check_shape(element, item, f"{where}[{index}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ShapeError(f"field '{where}' is {_kind(value)}, expected an object")
        _, item = get_args(shape)
        for key, element in value.items():
            if not isinstance(key, str):
                raise ShapeError(f"field '{where}' has a key that is not a string: {key!r}")
            check_shape(element, item, _join(where, key))
        return
    if not _scalar_fits(value, shape):
        raise ShapeError(f"field '{where}' is {_kind(value)}, expected {_describe(shape)}")


def _scalar_fits(value: Any, shape: Any) -> bool:
    if shape is type(None):
        return value is None
    if shape is bool:
        return isinstance(value, bool)
    if shape is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if shape is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if shape is str:
        return isinstance(value, str)
    raise TypeError(f"the schema uses a type it cannot check: {shape!r}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    for kind, name in names.items():
        if type(value) is kind:
            return f"{name} ({value!r})"[:80]
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else type(value).__name__


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def conform(section: Section) -> Section:
    """Return ``section`` unchanged when its data has the declared shape (or it is already
    an error), else an error naming the section and the field.

    Why at the parser boundary: a verdict must never see data of another shape than the one
    it was written for; a probe, the emulator or a host that drifts ends as an error.
    """
    spec = SCHEMA.get(section.name)
    if section.data is None:
        return section
    if spec is None:
        return Section.failed(
            section.name,
            f"section '{section.name}' is not declared in hrw_preflight/facts/schema.py",
            section.raw,
        )
    try:
        check_shape(section.data, spec.shape, "")
    except ShapeError as exc:
        return Section.failed(
            section.name, f"section '{section.name}' has an unexpected shape: {exc}", section.raw
        )
    return section


# --- the design doc's fact table -------------------------------------------------------


def render(shape: Any) -> str:
    """Return ``shape`` written as JSON-like text: ``{"key": int, ...}``, ``[str]``,
    ``str | None``, ``"ok" | "failed"``."""
    origin = get_origin(shape)
    if _is_typeddict(shape):
        hints = typing.get_type_hints(shape)
        optional = shape.__optional_keys__
        fields = [
            f'"{key}"{"?" if key in optional else ""}: {render(hint)}'
            for key, hint in hints.items()
        ]
        return "{" + ", ".join(fields) + "}"
    if origin in (Union, types.UnionType):
        return " | ".join(render(a) for a in get_args(shape))
    if origin is Literal:
        return " | ".join(f'"{a}"' for a in get_args(shape))
    if origin is list:
        return f"[{render(get_args(shape)[0])}]"
    if origin is dict:
        return "{str: " + render(get_args(shape)[1]) + "}"
    if shape is type(None):
        return "None"
    return str(shape.__name__)


def fact_table() -> str:
    """Return the markdown table of every section, its platforms, data shape and note.

    docs/design.md section 1 holds this text; a test fails when the two differ, so the
    document cannot drift from the schema (``python -m hrw_preflight.facts.schema``
    prints it).
    """
    lines = ["| section | platforms | `data` | note |", "|---|---|---|---|"]
    for name, spec in SCHEMA.items():
        platforms = "both" if spec.platforms == BOTH else ", ".join(spec.platforms)
        data = render(spec.shape).replace("|", "\\|")
        lines.append(f"| `{name}` | {platforms} | `{data}` | {spec.note} |")
    return "\n".join(lines) + "\n"


# --- typed access for the verdicts ------------------------------------------------------


class Unreadable(Exception):
    """A section a verdict needs could not be read; the message gives the probe's reason."""


@overload
def section_data(facts: HostFacts, name: Literal["hardware"]) -> HardwareData: ...
@overload
def section_data(facts: HostFacts, name: Literal["pressure"]) -> PressureData: ...
@overload
def section_data(facts: HostFacts, name: Literal["worker"]) -> WorkerData: ...
@overload
def section_data(facts: HostFacts, name: Literal["network"]) -> NetworkData: ...
@overload
def section_data(facts: HostFacts, name: Literal["processes"]) -> ProcessesData: ...
@overload
def section_data(facts: HostFacts, name: Literal["omsconfig_log"]) -> OmsconfigLogData: ...
@overload
def section_data(facts: HostFacts, name: Literal["tools"]) -> ToolsData: ...
@overload
def section_data(facts: HostFacts, name: Literal["dsc_config"]) -> DscConfigData: ...
@overload
def section_data(facts: HostFacts, name: Literal["oms_cert"]) -> OmsCertData: ...
@overload
def section_data(facts: HostFacts, name: Literal["prereqs"]) -> PrereqsData: ...
@overload
def section_data(facts: HostFacts, name: Literal["clock"]) -> ClockData: ...
@overload
def section_data(facts: HostFacts, name: Literal["service"]) -> ServiceData: ...
@overload
def section_data(facts: HostFacts, name: Literal["events"]) -> EventsData: ...
@overload
def section_data(facts: HostFacts, name: Literal["kind"]) -> KindFacts: ...
@overload
def section_data(facts: HostFacts, name: Literal["extension"]) -> ExtensionFacts: ...
@overload
def section_data(facts: HostFacts, name: Literal["ext_service"]) -> ServiceFacts: ...
@overload
def section_data(facts: HostFacts, name: Literal["arc"]) -> ArcFacts: ...
@overload
def section_data(facts: HostFacts, name: Literal["identity"]) -> IdentityFacts: ...
@overload
def section_data(facts: HostFacts, name: Literal["remnants"]) -> RemnantFacts: ...
@overload
def section_data(facts: HostFacts, name: Literal["arc_acl"]) -> ArcAclFacts: ...
def section_data(facts: HostFacts, name: SectionName) -> Any:
    """Return the data of section ``name`` typed by its declared shape, or raise
    :class:`Unreadable` with the probe's reason when it could not be read."""
    section = facts.section(name)
    if section.data is None:
        raise Unreadable(f"could not read {name}: {section.error}")
    return section.data


if __name__ == "__main__":
    print(fact_table(), end="")
