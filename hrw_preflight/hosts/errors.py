"""The one exception type for bad user input.

Anything the operator typed or configured (a host spec, an inventory, a CA file) that the
suite cannot use raises :class:`ConfigError`. Its message is a single line that names the
offending input and says what to change, so the command line can print it as is and stop.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input; ``str(error)`` is one line saying what to fix."""

    def __init__(self, message: str) -> None:
        # Newlines would break the "one line" promise (and could smuggle fake log lines).
        super().__init__(" ".join(message.split()))


class HostUnreachable(Exception):
    """The host could not be reached or stopped answering; the message says why."""


class LoginFailed(HostUnreachable):
    """The host answered but no login was possible: credentials rejected, or none to offer
    (no Kerberos ticket). Its message starts with :data:`LOGIN_FAILED`, so every check says
    the login failed, not that the host is unreachable."""


LOGIN_FAILED = "login failed: "
