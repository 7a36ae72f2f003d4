"""Mask secrets in text before it reaches a report, a log or the terminal.

Two layers, applied to everything written out:

1. known values: passwords registered with :meth:`Redactor.add` (from targets, proxy
   settings, proxy.conf) are replaced wherever they occur, also percent-encoded, even
   inside a longer word (a password can sit inside a URL or a command line). Only values
   of at least eight characters that are not all digits are searched for: a short or
   numeric secret ("2026") matches ordinary text (years in timestamps, ports, counts), so
   masking it would mangle the output (a timestamp no longer a timestamp) and reveal the
   secret by where the masks fall. Such secrets are protected by never being put in
   output: every place that handles a credential masks it by position (the parsers of
   proxy.conf, ``hrw_proxy`` and ``--hosts``, and the patterns below);
2. patterns: the password of URL userinfo (``http://user:***@host``, also the scheme-less
   ``user:***@host:port`` of the agent's proxy.conf), ``Authorization`` and
   ``Proxy-Authorization`` header values, and ``key=value``/``key: value`` pairs whose key
   names a password, passphrase, secret, token or workspace key (``password=``,
   ``ansible_password:``, ``"ansible_winrm_pass": "..."``, ``--password x``).

Before both, PEM private keys (``-----BEGIN ... PRIVATE KEY-----`` up to its end line, or to
the end of the text when the end line is missing) are removed whole: the last line of
defence should a probe ever read key material (:func:`drop_private_keys`).
"""

from __future__ import annotations

import re
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hrw_preflight.hosts.proxy_conf import proxy_password

if TYPE_CHECKING:
    from hrw_preflight.hosts.targets import Secret, Target

MASK = "***"
MIN_SEARCHED_LENGTH = 8

_URL_USERINFO = re.compile(
    r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]*:)(?P<secret>[^\s@'\"]+)(?=@)"
)
# proxy.conf's "[user:password@]host:port" without a scheme; the port keeps this narrow.
_BARE_USERINFO = re.compile(
    r"(?P<keep>(?<![\w/:.@-])[\w.%+-]+:)(?P<secret>[^\s@'\"/:]+)(?=@[\w.-]+:\d+\b)"
)
_AUTH_HEADER = re.compile(
    r"(?P<keep>\b(?:proxy-)?authorization['\"]?[ \t]*[:=][ \t]*['\"]?"
    r"(?:(?:basic|bearer|negotiate|ntlm|digest|kerberos)[ \t]+)?)"
    r"(?P<secret>[^\s'\",}]+)",
    re.IGNORECASE,
)
_SECRET_KEY = (
    r"(?:[\w-]*[_-])?"
    r"(?:password|passwd|passphrase|pass|pwd|secret|token|"
    r"(?:workspace|shared|primary|secondary)[_-]?key)"
    r"(?:[_-][\w-]*)?"
)
_KEY_VALUE = re.compile(
    r"(?P<keep>(?<![\w-])['\"]?" + _SECRET_KEY + r"['\"]?[ \t]*(?:=|:)[ \t]*)"
    # "password=None" says no password is set: evidence worth keeping, not a secret.
    r"(?!(?:None|null)\b)"
    r"(?P<secret>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&}'\"]+)",
    re.IGNORECASE,
)
_CLI_FLAG = re.compile(
    r"(?P<keep>(?<![\w-])--?(?:password|passwd|pass|pwd|passphrase)(?:[ \t]+|=))"
    r"(?P<secret>\"[^\"\n]*\"|'[^'\n]*'|[^\s'\"]+)",
    re.IGNORECASE,
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*?)PRIVATE KEY-----.*?(?:-----END (?P=kind)PRIVATE KEY-----|\Z)",
    re.S,
)
PRIVATE_KEY_REMOVED = "[private key removed]"
_PATTERNS = (_URL_USERINFO, _BARE_USERINFO, _AUTH_HEADER, _KEY_VALUE, _CLI_FLAG)
# A literal each pattern cannot match without (checked on the case-folded text): most report
# texts hold none of them, and skipping the regex there is most of the redaction cost.
_NEEDS: tuple[tuple[str, ...], ...] = (
    ("@",),
    ("@",),
    ("authorization",),
    ("pass", "pwd", "secret", "token", "key"),
    ("pass", "pwd"),
)


def searchable(value: str) -> bool:
    """Return whether ``value`` is distinctive enough to be masked wherever it occurs: at
    least :data:`MIN_SEARCHED_LENGTH` characters and not all digits."""
    return len(value) >= MIN_SEARCHED_LENGTH and not value.isdigit() and value != MASK


def _mask_match(match: re.Match[str]) -> str:
    """Return the match with its secret group replaced by the mask, quotes preserved."""
    secret = match.group("secret")
    if len(secret) >= 2 and secret[0] == secret[-1] and secret[0] in "'\"":
        masked = f"{secret[0]}{MASK}{secret[0]}"
    else:
        masked = MASK
    return match.group("keep") + masked


def holds_private_key(text: str) -> bool:
    """Return whether ``text`` holds the start of a PEM private key (any kind)."""
    return "PRIVATE KEY-----" in text and _PRIVATE_KEY.search(text) is not None


def drop_private_keys(text: str) -> str:
    """Return ``text`` with every PEM private key replaced by :data:`PRIVATE_KEY_REMOVED`.

    Why: key material must never reach evidence, whatever path brought it there; a key
    whose end line is missing (cut off) is removed up to the end of the text.
    """
    if "PRIVATE KEY-----" not in text:
        return text
    return _PRIVATE_KEY.sub(PRIVATE_KEY_REMOVED, text)


def url_password(url: str) -> str | None:
    """Return the password in a URL's userinfo (percent-decoded), or None if it has none."""
    candidate = url if "://" in url else f"http://{url}"
    try:
        password = urllib.parse.urlsplit(candidate).password
    except ValueError:
        return None
    return urllib.parse.unquote(password) if password else None


_MEMO_SIZE = 4096
_WHOLE_TEXT_LIMIT = 2048


class Redactor:
    """Masks registered secret values and secret-looking patterns in text.

    One instance per run collects every secret the suite learns; calling it on a string
    returns the string safe to write out.
    """

    def __init__(self, secrets: Iterable[str | Secret] = ()) -> None:
        self._values: set[str] = set()
        self._infix: re.Pattern[str] | None = None
        # Reports redact the same probe output once per check of a host; remember results.
        # Least recently used first: a host's sections are asked for again by each of its
        # checks, while the one-off texts of other hosts age out.
        self._memo: OrderedDict[str, str] = OrderedDict()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | Secret | None) -> None:
        """Register a secret value (plain or :class:`Secret`) to be masked wherever it
        occurs; empty, short and all-digit values are not searched for (see the module
        docstring for why)."""
        if secret is None:
            return
        value = secret if isinstance(secret, str) else secret.reveal()
        if not searchable(value) or value in self._values:
            return
        self._values.add(value)
        quoted = urllib.parse.quote(value, safe="")
        if quoted != value:
            self._values.add(quoted)
        self._compile()

    def add_url(self, url: str | None) -> None:
        """Register the password of a URL's userinfo (e.g. a proxy URL), if it has one."""
        if url:
            self.add(url_password(url))

    def add_target(self, target: Target) -> None:
        """Register a target's password and the password of its ``hrw_proxy`` override
        (read as the agent reads a proxy setting)."""
        for value in target.secrets():
            self.add(value)
        proxy = target.overrides.get("hrw_proxy")
        if isinstance(proxy, str):
            self.add(proxy_password(proxy))

    def _compile(self) -> None:
        """Rebuild the value matchers, longest first so a secret inside another is covered."""
        ordered = sorted(self._values, key=len, reverse=True)
        self._memo.clear()
        self._infix = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        """Return ``text`` with every registered secret and secret-looking value masked."""
        if not text:
            return text
        done = self._memo.get(text)
        if done is not None:
            self._memo.move_to_end(text)
            return done
        masked = self._mask(text)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.popitem(last=False)
        self._memo[text] = masked
        return masked

    def mask_known(self, text: str) -> str:
        """Return ``text`` with the registered secret values masked (the patterns are not
        applied) and any PEM private key removed: the cheap last pass over a document whose
        fields were each redacted."""
        text = drop_private_keys(text)
        if self._infix is not None:
            text = self._infix.sub(MASK, text)
        return text

    def _mask(self, text: str) -> str:
        text = self.mask_known(text)
        lowered = text.casefold()  # as wide as the patterns' IGNORECASE
        active = [
            (pattern, needs)
            for pattern, needs in zip(_PATTERNS, _NEEDS, strict=True)
            if any(literal in lowered for literal in needs)
        ]
        if not active:
            return text
        if len(text) <= _WHOLE_TEXT_LIMIT:
            for pattern, _ in active:
                text = pattern.sub(_mask_match, text)
            return text
        # None of the patterns can match across a newline, so a long text (a probe's whole
        # output, the evidence record) is masked line by line, and only the lines holding a
        # pattern's literal are searched: the regexes scan a few lines, not megabytes.
        lines = text.split("\n")
        for index, line in enumerate(lines):
            low = line.casefold()
            for pattern, needs in active:
                if any(literal in low for literal in needs):
                    line = pattern.sub(_mask_match, line)
            lines[index] = line
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Redactor({len(self._values)} secrets)"
