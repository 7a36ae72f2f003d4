"""Escape sequences and control characters from hosts never reach the terminal."""

from __future__ import annotations

import pytest

from hrw_preflight.facts.model import HostFacts, Section
from hrw_preflight.run.terminal_text import terminal_safe
from tests.suite_runner import latest, run_suite, windows_inventory, windows_sections

pytest_plugins = ["pytester"]
SMA = "Microsoft-SMA/Operational"

# Clear the screen, set the window title (OSC), colour, move the cursor up and overwrite
# with a carriage return, an 8-bit CSI, a bell and a right-to-left override.
HOSTILE = (
    "The specified class does not exist.. \x1b[2J\x1b]0;owned\x07\x1b[31mred\x1b[0m"
    "\x1b[1A\rPASSED \x9b2K\x07 \u202eevil"
)


def test_sequences_are_removed_and_other_controls_made_visible() -> None:
    assert terminal_safe(HOSTILE) == (
        "The specified class does not exist.. red\ufffdPASSED \ufffd \ufffdevil"
    )
    assert terminal_safe("two\nlines\tand a tab") == "two\nlines\tand a tab"


def test_host_output_reaches_the_terminal_without_control_characters(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event message the host logged (any program on it can write one) with escapes."""
    inventory = windows_inventory(pytester)
    sections = windows_sections()
    event = {
        "id": 2138,
        "provider": "HealthService",
        "level": 2,
        "time": "2026-12-01T10:00:00Z",
        "message": HOSTILE,
    }
    sections["events"] = Section(
        "events",
        {"lookback_hours": 24.0, "logs": {"Operations Manager": [event], SMA: []}},
    )
    result = run_suite(
        pytester,
        monkeypatch,
        {"win1": HostFacts("win1", "windows", sections)},
        [f"--ansible-inventory={inventory}", "--hosts=ansible://all", "-k", "om-2138", "-rA"],
    )
    result.assert_outcomes(failed=1)
    terminal = result.stdout.str() + result.stderr.str()
    assert "does not exist.. red" in terminal and "PASSED \ufffd" in terminal  # still shown
    for char in ("\x1b", "\x07", "\x9b", "\r", "\u202e"):
        assert char not in terminal, repr(char)
    junit = (latest(pytester) / "junit.xml").read_text()
    assert "\x1b" not in junit and "&#27;" not in junit
