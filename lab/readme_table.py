"""The README's table of lab profiles, written from ``lab/profiles/*.yaml``.

Why: each profile says what is wrong with its host and which scenarios must not pass there
(``expect_failing``, which the acceptance test holds the suite to); the README shows the same
between ``<!-- generated: lab-profiles ... -->`` markers, rewritten by ``python -m lab docs``,
so adding a fault is adding its profile file and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

from lab.profiles import ProfileError, load_profiles

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(
    r"(<!-- generated: lab-profiles [^\n]*-->\n)(.*?)(<!-- end generated: lab-profiles -->)", re.S
)


def render_profiles_table() -> str:
    """Return the Markdown table of the default fleet's profiles, in fleet order."""
    rows = ["| profile | its host | scenarios that must not pass |", "|---|---|---|"]
    for profile in load_profiles().ordered():
        failing = ", ".join(profile["expect_failing"]) or "none"
        description = str(profile["description"]).replace("|", "\\|")
        rows.append(f"| {profile.name} | {description} | {failing} |")
    return "\n".join(rows)


def update_readme(path: Path = README, *, check: bool) -> bool:
    """Rewrite the profile table in ``path`` (with ``check``, only compare); return whether it
    was already up to date. Missing markers raise ProfileError naming them."""
    text = path.read_text(encoding="utf-8")
    if not _BLOCK.search(text):
        raise ProfileError(f"{path}: no '<!-- generated: lab-profiles ... -->' markers")
    table = render_profiles_table()
    new = _BLOCK.sub(lambda m: m.group(1) + table + "\n" + m.group(3), text)
    if new == text:
        return True
    if not check:
        path.write_text(new, encoding="utf-8")
    return False
