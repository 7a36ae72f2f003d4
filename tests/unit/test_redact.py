"""Tests for masking secrets in report text."""

from __future__ import annotations

import pytest

from hrw_preflight.hosts.redact import Redactor, url_password
from hrw_preflight.hosts.targets import Secret, Target


def test_registered_secret_is_masked_everywhere() -> None:
    redact = Redactor(["Hunter2-pw"])
    text = "login Hunter2-pw failed; retry with Hunter2-pw\nHunter2-pw"
    assert redact(text) == "login *** failed; retry with ***\n***"


def test_long_secret_inside_a_longer_word_is_masked() -> None:
    redact = Redactor(["s3cr3t-X"])
    assert redact("tokens3cr3t-Xsuffix") == "token***suffix"


def test_regex_metacharacters_in_secret_are_literal() -> None:
    secret = r"a.b*c+(d)[e]$^\1|?"
    redact = Redactor([secret])
    assert redact(f"pw is {secret} ok") == "pw is *** ok"
    # The characters must not act as a pattern: "aXb" would match "a.b" as a regex.
    assert redact("aXbbbc+(d)[e]$^\\1|?") == "aXbbbc+(d)[e]$^\\1|?"


def test_secret_spanning_lines_is_masked() -> None:
    secret = "line-one\nline-two"
    redact = Redactor([secret])
    assert redact("key:\nline-one\nline-two\nend") == "key:\n***\nend"


@pytest.mark.parametrize("secret", ["ab", "2026", "Pw-1234", "1234567890123"])
def test_short_or_numeric_secret_is_never_searched_for(secret: str) -> None:
    """It would match years, ports and counts: masking it there mangles the text and shows
    where the secret occurs. It is kept out of output where credentials are handled."""
    redact = Redactor([secret])
    text = f"2026-12-01T14:15:45Z port 1234567890123 user ab (Pw-1234x) {secret}"
    assert redact(text) == text
    assert repr(redact) == "Redactor(0 secrets)"
    # Where it appears as a credential, the patterns still mask it.
    assert redact(f"http://u:{secret}@h:1 password={secret}") == "http://u:***@h:1 password=***"


def test_longest_secret_wins_when_one_contains_another() -> None:
    redact = Redactor(["passw0rd", "passw0rd123"])
    assert redact("x passw0rd123 y passw0rd z") == "x *** y *** z"


def test_percent_encoded_form_is_masked() -> None:
    redact = Redactor(["p@ss w/rd"])
    assert "p%40ss%20w%2Frd" not in redact("GET http://host/?q=p%40ss%20w%2Frd")


def test_secret_objects_and_empty_values() -> None:
    redact = Redactor()
    redact.add(Secret("Winrm-Pass-1"))
    redact.add(None)
    redact.add("")
    assert redact("Winrm-Pass-1 and ***") == "*** and ***"
    assert repr(redact) == "Redactor(1 secrets)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proxy http://bob:pa55@proxy.corp:3128", "proxy http://bob:***@proxy.corp:3128"),
        ("https://u:p%3Aw@h/x", "https://u:***@h/x"),
        ("'http://u:x@y:1'", "'http://u:***@y:1'"),
        ("http://proxy.corp:3128", "http://proxy.corp:3128"),
        ("http://bob@proxy:3128", "http://bob@proxy:3128"),
        ("bob:pa55@10.0.0.3:3128", "bob:***@10.0.0.3:3128"),
        ("at 12:30 user@host", "at 12:30 user@host"),
    ],
)
def test_url_userinfo_password(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Proxy-Authorization: Basic Ym9iOnBhNTU=", "Proxy-Authorization: Basic ***"),
        ("authorization: Negotiate TlRMTVNTUAAB", "authorization: Negotiate ***"),
        ("Authorization: sometoken", "Authorization: ***"),
        ("{'Authorization': 'Bearer eyJhbGci'}", "{'Authorization': 'Bearer ***'}"),
    ],
)
def test_authorization_headers(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2", "password=***"),
        ("PASSWORD = hunter2 next", "PASSWORD = *** next"),
        ("ansible_password: hunter2", "ansible_password: ***"),
        ('"ansible_winrm_pass": "hun ter2",', '"ansible_winrm_pass": "***",'),
        ("ansible_ssh_pass='x y'", "ansible_ssh_pass='***'"),
        ("HRW_WINRM_PASSWORD_WIN1=abc", "HRW_WINRM_PASSWORD_WIN1=***"),
        ("db_secret: x;other=1", "db_secret: ***;other=1"),
        ("onboard --password hunter2 -w ws", "onboard --password *** -w ws"),
        ("workspace_key=abc==", "workspace_key=***"),
        ("password:\nnext line", "password:\nnext line"),
        ("password=None, ansible_password: null", "password=None, ansible_password: null"),
        ("password=Nonesuch", "password=***"),
        ("bypass_certificate_verification=false", "bypass_certificate_verification=false"),
        ("jrds_cert_thumbprint=ABCDEF", "jrds_cert_thumbprint=ABCDEF"),
    ],
)
def test_password_key_value_forms(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_masking_is_idempotent() -> None:
    redact = Redactor(["Hunter2-pw"])
    once = redact("password=Hunter2-pw http://u:Hunter2-pw@h:1")
    assert redact(once) == once == "password=*** http://u:***@h:1"


def test_add_target_registers_password_and_proxy_password() -> None:
    target = Target(
        name="w1",
        platform="windows",
        connection="winrm",
        address="w1",
        user="svc",
        password=Secret("Tgt-Pass-9"),
        overrides={"hrw_proxy": "http://px:Proxy-Pw-7@10.0.0.3:3128"},
    )
    redact = Redactor()
    redact.add_target(target)
    assert redact("Tgt-Pass-9 / Proxy-Pw-7") == "*** / ***"


def test_url_password() -> None:
    assert url_password("http://u:p%40w@h:1") == "p@w"
    assert url_password("u:pw@h:3128") == "pw"
    assert url_password("http://h:1") is None
    assert url_password("http://[bad") is None


def test_long_text_is_masked_as_its_lines_are() -> None:
    """Texts above the whole-text limit go line by line; the result must not differ."""
    samples = [
        ("proxy http://bob:pa55@proxy.corp:3128", "proxy http://bob:***@proxy.corp:3128"),
        ("bob:pa55@10.0.0.3:3128", "bob:***@10.0.0.3:3128"),
        ("Proxy-Authorization: Basic Ym9iOnBhNTU=", "Proxy-Authorization: Basic ***"),
        ('"ansible_winrm_pass": "hun ter2",', '"ansible_winrm_pass": "***",'),
        ("onboard --password hunter2 -w ws", "onboard --password *** -w ws"),
        ("password:", "password:"),
        ("next line", "next line"),
        ("bypass_certificate_verification=false", "bypass_certificate_verification=false"),
        ("login Hunter2-pw failed", "login *** failed"),
    ]
    filler = ["MIIFrjCCBJagAwIBAgIQBwNx0Q95No0H4qQ3jbnPhjANBgkqhkiG9w0BAQsFADBh"] * 60
    lines = filler + [text for text, _ in samples] + filler
    expected = filler + [masked for _, masked in samples] + filler
    text = "\r\n".join(lines)
    assert len(text) > 4096
    assert Redactor(["Hunter2-pw"])(text) == "\r\n".join(expected)


def test_private_keys_are_removed_whole_even_when_cut_off() -> None:
    from hrw_preflight.hosts.redact import PRIVATE_KEY_REMOVED

    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----"
    redact = Redactor()
    assert redact(f"before\n{key}\nafter") == f"before\n{PRIVATE_KEY_REMOVED}\nafter"
    cut = "x -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA"
    assert redact(cut) == f"x {PRIVATE_KEY_REMOVED}"
    escaped = '{"raw": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n"}'
    assert "MIIE" not in redact.mask_known(escaped)
    certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    assert redact(certificate) == certificate


def test_a_text_in_use_stays_remembered_while_one_off_texts_age_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redact = Redactor()
    masked: list[str] = []
    real_mask = redact._mask

    def counting(text: str) -> str:
        masked.append(text)
        return real_mask(text)

    monkeypatch.setattr(redact, "_mask", counting)
    section = "a host's section, asked for by each of its checks\n" * 50
    redact(section)
    for n in range(10_000):  # far more one-off texts than the memo holds
        redact(f"check {n} reason")
        if n % 100 == 0:
            redact(section)
    assert masked.count(section) == 1
