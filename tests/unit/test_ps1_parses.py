"""Every PowerShell script the package ships must parse cleanly (tree-sitter-powershell)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

PACKAGE = Path(__file__).resolve().parents[2] / "hrw_preflight"
SCRIPTS = sorted(PACKAGE.rglob("*.ps1"))


def _problems(node: tree_sitter.Node) -> list[str]:
    """Return every ERROR or MISSING node under ``node`` as 'line:column kind text'."""
    found = []
    if node.type == "ERROR" or node.is_missing:
        kind = "MISSING" if node.is_missing else "ERROR"
        text = (node.text or b"").decode("utf-8", errors="replace")[:60]
        found.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {kind} {text!r}")
    for child in node.children:
        found.extend(_problems(child))
    return found


def test_the_package_ships_powershell_scripts() -> None:
    assert any(script.name == "windows_facts.ps1" for script in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses_without_error_nodes(script: Path) -> None:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(script.read_bytes())
    problems = _problems(tree.root_node)
    assert not problems, f"{script.name} does not parse: " + "; ".join(problems[:5])


def test_parse_check_catches_a_broken_script() -> None:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(b"if ($x) { Get-Service -Name 'a'\n")
    assert _problems(tree.root_node)
