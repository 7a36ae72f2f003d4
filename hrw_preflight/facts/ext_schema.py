"""The shapes of the fact sections about worker kinds and the extension-based (V2) worker.

Both platforms' probes fill these same shapes (Linux from the guest agent's files under
``/var/lib/waagent``, systemd and ``/opt/azcmagent``; Windows from ``C:\\Packages\\Plugins``,
the service manager, the registry and ``%ProgramData%\\AzureConnectedMachineAgent``), so the
verdicts judge one shape. Where each fact comes from: the references of HRW-K01, R01 and
X01-X05 in ``verdicts/catalogue.yaml`` (Microsoft's extension-based troubleshooting, install
and migration articles, the Arc documentation, the Linux guest agent Azure/WALinuxAgent).

Sections (name -> shape): ``extension`` -> :class:`ExtensionFacts`, ``ext_service`` ->
:class:`ServiceFacts`, ``arc`` -> :class:`ArcFacts`, ``identity`` -> :class:`IdentityFacts`,
``remnants`` -> :class:`RemnantFacts`, ``arc_acl`` (Windows only) -> :class:`ArcAclFacts`,
``kind`` -> :class:`KindFacts` (derived from the others by :mod:`hrw_preflight.facts.kind`).
"""

from typing import Literal, NotRequired, TypedDict
from urllib.parse import urlsplit

LINUX_HANDLER = "Microsoft.Azure.Automation.HybridWorker.HybridWorkerForLinux"
WINDOWS_HANDLER = "Microsoft.Azure.Automation.HybridWorker.HybridWorkerForWindows"
WAAGENT_DIR = "/var/lib/waagent"
WINDOWS_PLUGINS_DIR = "C:\\Packages\\Plugins"
LINUX_SERVICE = "hwd"
WINDOWS_SERVICE = "HybridWorkerService"
LINUX_WORKER_USER = "hweautomation"
ARC_LINUX_DIR = "/opt/azcmagent"
ARC_IDENTITY_ENDPOINT = "http://localhost:40342/metadata/identity/oauth2/token"
IMDS_TOKEN_URL = (
    "http://169.254.169.254/metadata/identity/oauth2/token"
    "?api-version=2018-02-01&resource=https://management.azure.com/"
)
# The troubleshooting article's text for a machine that is neither an Azure VM nor on Arc.
NO_IDENTITY_ENDPOINT = (
    "Unable to retrieve IMDS identity endpoint for non-Azure VM. Ensure that the Azure "
    "connected machine agent is installed and System-assigned identity is enabled."
)

# The extension-based worker's endpoints, as items of HRW-G01/G04: the JRDS host of the
# extension's AutomationAccountURL, the account's agentsvc host, and on Arc-enabled servers the
# Arc identity service and Entra ID sign-in the worker's identity depends on.
EXTENSION_ROLES = ("ext-jrds", "ext-agentsvc", "arc-his", "arc-login")
ARC_HIS_HOST = "gbl.his.arc.azure.com"
ARC_LOGIN_HOST = "login.microsoftonline.com"

Place = Literal["azure-vm", "arc", "none"]
Kind = Literal["agent", "extension", "both", "none"]


class SubStatus(TypedDict):
    """One ``status.substatus[]`` entry of an extension status file."""

    name: str
    status: str
    code: int | None
    message: str  # formattedMessage.message; on Windows CRLF-separated "[time] text" lines


class ExtensionStatus(TypedDict):
    """Element 0 of ``<seq>.status`` (a JSON array), as the guest agent reads it."""

    seq: int
    file: str  # the status file's path on the host
    status: str  # transitioning, warning, error, success (anything else counts as error)
    code: int | None
    operation: str | None
    configuration_applied: str | None  # status.configurationAppliedTime
    message: str  # status.formattedMessage.message
    substatus: list[SubStatus]


class ExtensionFacts(TypedDict):
    """Section ``extension``: the hybrid worker extension as the guest agent keeps it.

    ``installed`` is whether a handler folder exists (the newest version's is read).
    ``handler_state`` is the Linux ``config/HandlerState`` text (``NotInstalled``,
    ``Installed``, ``Enabled``, ``FailedUpgrade``), None where it is missing, and None on
    Windows, which keeps no such file (``handler_state_kept`` False there).
    ``status`` is None when no status file exists for the newest sequence number.
    ``automation_account_url`` is ``publicSettings.AutomationAccountURL`` of the newest
    settings, or ``--hrw-automation-account-url`` when given (``account_url_source`` says
    which). ``proxy`` is the extension's own proxy where the host exposes it (Windows public
    ``ProxySettings.ProxyServer``; the Linux ``Proxy_URL`` is protected, so None there).
    """

    installed: bool
    handler: str
    folder: str | None
    version: str | None
    handler_state_kept: bool
    handler_state: str | None
    seq: int | None
    seq_source: str | None  # "mrseq" or "settings" (the highest <seq>.settings)
    status: ExtensionStatus | None
    automation_account_url: str | None
    account_url_source: Literal["settings", "override"] | None
    proxy: str | None
    endpoints: dict[str, str | None]  # role (EXTENSION_ROLES) -> host name the probe tested


class Process(TypedDict):
    """One process of the process table."""

    pid: int
    uid: int
    user: str
    args: str


class ServiceFacts(TypedDict):
    """Section ``ext_service``: the extension-based worker's service.

    Linux: ``state`` is ``systemctl is-active hwd`` (``active``, ``inactive``, ``failed``...)
    and ``start`` is ``systemctl is-enabled hwd`` (``enabled``, ``disabled``...); ``exists``
    is False when systemd knows no such unit. Windows: ``state`` is Win32_Service ``State``
    (``Running``...) and ``start`` its ``StartMode`` (``Auto``...). ``worker_user`` and
    ``processes`` are Linux's (``hweautomation`` and the processes it owns, uid None when the
    user does not exist); Windows leaves them None and [].
    """

    name: str
    exists: bool
    state: str
    start: str
    worker_user: str | None
    worker_uid: int | None
    processes: list[Process]


class ArcFacts(TypedDict):
    """Section ``arc``: whether the Azure Connected Machine agent is installed and himds runs.

    Linux: ``/opt/azcmagent`` exists; ``himds`` is the ``himdsd`` daemon's state (``running``
    when such a process runs, else ``not running``). Windows: the ``himds`` service's State.
    """

    installed: bool
    markers: list[str]  # what showed it installed (paths, services)
    himds_running: bool | None  # None when the agent is not installed
    himds: str  # what was seen, as text


class EndpointAnswer(TypedDict):
    """What one local identity endpoint answered. The body is never kept: the probe reads,
    on the host, only whether it held an ``access_token`` field and then drops it."""

    answered: bool  # an HTTP answer came back at all
    status: int | None
    token_present: bool
    challenge: str | None  # the Www-Authenticate header (Arc: Basic realm=<key file path>)
    error: str | None  # the endpoint's error / error_description, or why nothing answered


class IdentityFacts(TypedDict):
    """Section ``identity``: IMDS (always asked, never through a proxy) and, when the Arc
    agent is installed, its local identity endpoint (None when not asked)."""

    imds: EndpointAnswer
    arc: EndpointAnswer | None


class V2Registration(TypedDict):
    """One extension-based worker registration in the registry (empty: value absent)."""

    key: str
    jrds_uri: str
    azure_resource_id: str


class RemnantFacts(TypedDict):
    """Section ``remnants``: leftovers of each kind found on the host (paths or registry
    keys); whether they matter depends on the kind installed (HRW-X04)."""

    agent: list[str]
    extension: list[str]
    # Windows: the registrations under HybridRunbookWorkerV2 (key, JRDS URI, resource id).
    v2_registrations: NotRequired[list[V2Registration]]


class AclGrant(TypedDict):
    """Whether an account holds a right on a path through an entry naming it directly."""

    path: str
    granted_directly: bool


class ArcAclFacts(TypedDict):
    """Section ``arc_acl`` (Windows): the custom Hybrid Worker credential's grants.

    ``account`` is the credential's user name as the inventory names it
    (``hrw_worker_credential_account``: no public source says where a host keeps it), None
    when none is named (jobs are taken to run as the system account).
    ``tokens`` is Read on ``C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens``,
    ``extension_folder`` Read & Execute on the extension's plugin folder; both None when
    there is no custom credential. ``exit_2148734720`` lists Microsoft-SMA events within the
    window whose message holds ``Win32 Process Exited with code [2148734720]``.
    """

    account: str | None
    tokens: AclGrant | None
    extension_folder: AclGrant | None
    exit_2148734720: list[dict[str, str]]  # {time, message}


class KindFacts(TypedDict):
    """Section ``kind``: which worker kinds are installed, and where the host runs.

    ``agent`` / ``extension`` are None when the facts that tell could not be read, or when
    this platform's probe does not read them yet (``unknown`` says why).
    ``place`` is ``arc`` when the Connected Machine agent is installed, ``azure-vm`` when
    IMDS answered, else ``none``; None when unknown.
    """

    kind: Kind | None
    agent: bool | None
    extension: bool | None
    place: Place | None
    markers: dict[str, list[str]]  # agent, extension, place -> what showed it
    unknown: dict[str, str]  # agent/extension/place -> why it is unknown
    not_probed: list[str]  # sections this platform's probe does not read yet


def account_endpoints(account_url: str | None, arc: bool) -> dict[str, str | None]:
    """Return role -> host name of the extension-based worker's endpoints for an Automation
    account URL (``https://<id>.jrds.<region>.azure-automation.net/automationAccounts/<id>``);
    the agentsvc host is the JRDS host with ``jrds`` replaced, as Microsoft's support
    collector forms it. Arc endpoints are named only for an Arc-enabled server.
    """
    host = urlsplit(account_url).hostname if account_url else None
    agentsvc = None
    if host and ".jrds." in host:
        agentsvc = host.replace(".jrds.", ".agentsvc.", 1)
    return {
        "ext-jrds": host,
        "ext-agentsvc": agentsvc,
        "arc-his": ARC_HIS_HOST if arc else None,
        "arc-login": ARC_LOGIN_HOST if arc else None,
    }
