"""Stand-ins for the older ``openssl`` command lines that agent-based workers ran.

RHEL/CentOS 7 ship OpenSSL 1.0.2 and Ubuntu 18.04/20.04 and RHEL 8 ship 1.1.1. Neither can
be had as a build from the package registries this machine uses (Debian 12 has 3.0 only),
so a lab host that plays such a worker gets a small shell script named ``openssl`` first on
its PATH: it reports that version and refuses the ``s_client`` options the version lacks
with that version's own error text and exit status, and hands everything else to this
machine's real openssl (so the TLS handshake itself is OpenSSL 3's).

What each version lacks, from OpenSSL's change logs: ``-proxy`` came in 1.1.0,
``-proxy_user`` and ``-proxy_pass`` in 3.0; ``-no-CAfile``/``-no-CApath`` in 1.1.0 and
``-no-CAstore`` in 3.0. How each refuses an unknown option:

- 1.0.2 (hand-written argument loop): ``unknown option -proxy`` on stderr, then the usage
  text (here only its first lines), exit status 1;
- 1.1.1 (``opt_next``): ``s_client: Option unknown option -proxy_user`` and
  ``s_client: Use -help for summary.`` on stderr, exit status 1.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

REAL_OPENSSL = "/usr/bin/openssl"


@dataclass(frozen=True)
class Standin:
    """One old openssl CLI: its ``openssl version`` line, the s_client options it lacks and
    the stderr lines it prints for one (``{opt}`` is the option as given)."""

    version: str
    lacks: tuple[str, ...]
    refusal: tuple[str, ...]


STANDINS: dict[str, Standin] = {
    "1.0.2": Standin(
        version="OpenSSL 1.0.2k-fips  26 Jan 2017",
        lacks=("-proxy", "-proxy_user", "-proxy_pass", "-no-CAfile", "-no-CApath", "-no-CAstore"),
        refusal=(
            "unknown option {opt}",
            "usage: s_client args",
            "",
            " -host host     - use -connect instead",
            " -port port     - use -connect instead",
            " -connect host:port - who to connect to (default is localhost:4433)",
        ),
    ),
    "1.1.1": Standin(
        version="OpenSSL 1.1.1f  31 Mar 2020",
        lacks=("-proxy_user", "-proxy_pass", "-no-CAstore"),
        refusal=(
            "s_client: Option unknown option {opt}",
            "s_client: Use -help for summary.",
        ),
    ),
}
CLI_VERSIONS = ("system", *STANDINS)


def standin_script(name: str, real: str = REAL_OPENSSL) -> str:
    """Return the ``openssl`` shell script that stands in for OpenSSL ``name`` (a key of
    :data:`STANDINS`), handing what that version has to ``real``."""
    cli = STANDINS[name]
    refuse = "\n".join(
        f"          printf '%s\\n' {shlex.quote(line.replace('{opt}', '@OPT@'))}"
        ' | sed "s|@OPT@|$arg|" >&2'
        for line in cli.refusal
    )
    return f"""#!/bin/sh
# hrw-lab stand-in for {cli.version} (lab/openssl_standin.py): refuses the s_client
# options that version lacks as it does; everything else runs the real {real}.
if [ "$1" = version ]; then
  echo {shlex.quote(cli.version)}
  exit 0
fi
if [ "$1" = s_client ]; then
  for arg in "$@"; do
    case "$arg" in
      {"|".join(cli.lacks)})
{refuse}
          exit 1 ;;
    esac
  done
fi
exec {shlex.quote(real)} "$@"
"""
