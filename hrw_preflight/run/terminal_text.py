"""Text from hosts made safe for a terminal: no escape sequences, no control characters.

A host controls much of what a check reports (file contents, process command lines, event
messages). Printed as is, an ANSI sequence in it could clear the screen, rewrite earlier
lines (a failure shown as a pass), set the window title or, on some terminals, answer back.
The HTML report and evidence.json escape such text already; this is for the plugin's
messages, which go to the terminal and also to JUnit.
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other two-character ESC sequences, and
# the 8-bit CSI/OSC introducers.
_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x9d[^\x07\x1b]*(?:\x07|\x1b\\)?"
)
# Other C0/C1 controls (newline and tab kept), DEL, and the bidirectional overrides that
# make text display in another order than it reads.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Return ``text`` without escape sequences, other control characters shown as U+FFFD.

    Newlines and tabs stay: messages are multi-line by design.
    """
    return _CONTROL.sub("\ufffd", _SEQUENCE.sub("", text))
