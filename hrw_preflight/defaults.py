"""Every default of the suite, in one place.

The command-line options, the probe parameters (:class:`hrw_preflight.facts.params.
ProbeParams`), the connection bounds (:class:`hrw_preflight.hosts.connections.ConnectOptions`)
and the verdict thresholds (:class:`hrw_preflight.verdicts.base.Settings`) all take their
defaults from here, so a default is changed once and the help texts say the same. This module
imports nothing, so every stage may use it.
"""

from __future__ import annotations

LOOKBACK_HOURS = 24.0  # event-log look-back window
CONNECT_TIMEOUT_S = 10  # for a host to accept the connection
COMMAND_TIMEOUT_S = 120  # for one probe command on a host
ENDPOINT_TIMEOUT_S = 5.0  # for TCP 443 + TLS to one endpoint, from the host
MAX_OUTPUT_MB = 64  # what one probe command may print
MIN_LOGICAL_PROCESSORS = 2
MIN_MEMORY_GB = 4.0
MAX_CPU_LOAD = 0.9  # per logical processor
MIN_MEMORY_AVAILABLE_PCT = 10.0
PARALLEL_HOSTS = 16  # hosts probed at once ahead of the tests
REPORTS_DIR = "reports"
OMSCONFIG_LOG_MAX_BYTES = 64 * 1024 * 1024  # the tail of omsconfig.log that is scanned
# Event ids asked for in each Windows log (HRW-W02, W04; W03 scans messages instead).
EVENT_IDS: dict[str, tuple[int, ...]] = {
    "Operations Manager": (4502, 2127, 2129, 2133, 2138, 4000, 4001, 4002),
    "Microsoft-SMA/Operational": (15011,),
}
