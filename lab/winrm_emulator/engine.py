"""The emulator's command engine: how a Windows host in a lab profile answers a command.

It understands three things: cmd.exe's trivial commands (``hostname``, ``echo``),
``powershell`` with ``-EncodedCommand`` or ``-Command``, and the suite's probe (the known
bootstrap plus a script on stdin whose blocks it recognises by fingerprint, see
:mod:`lab.winrm_emulator.probe_blocks`). Everything else fails the way Windows fails:
cmd.exe's "is not recognized" text, or PowerShell's CommandNotFoundException as CLIXML.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any

import lab.winrm_emulator.ps_ext_sections  # noqa: F401 - registers the extension blocks
from lab.winrm_emulator.clixml_writer import error_stream
from lab.winrm_emulator.config import HostConfig
from lab.winrm_emulator.engine_api import CommandOutput, GivenInput, ProcessInput
from lab.winrm_emulator.probe_blocks import BOOTSTRAP, digest, known_block, split_regions
from lab.winrm_emulator.ps_sections import ANSWERS, RunState
from lab.winrm_emulator.wsman import CODEPAGES

_POWERSHELL = re.compile(r"^(?:.*\\)?powershell(?:\.exe)?$", re.IGNORECASE)
_SWITCHES = ("noprofile", "noninteractive", "nologo", "noexit", "sta", "mta")
_VALUED = ("executionpolicy", "inputformat", "outputformat", "windowstyle", "version")
_ENCODED = ("encodedcommand", "enc", "e", "ec")
_COMMAND = ("command", "c")
_VERB_NOUN = re.compile(r"\b[A-Za-z]+-[A-Za-z][A-Za-z0-9]*\b")
_STRINGS = re.compile(r"'[^']*'|\"[^\"]*\"")
# Commands the known probe blocks call; a changed block naming only these is reported as
# a changed block, not as a missing command.
_KNOWN_COMMANDS = {
    name.lower()
    for name in (
        "ConvertFrom-Json",
        "ConvertTo-Json",
        "ForEach-Object",
        "Get-ChildItem",
        "Get-CimInstance",
        "Get-Date",
        "Get-ItemProperty",
        "Get-Service",
        "Get-WinEvent",
        "Join-Path",
        "New-Object",
        "Select-Object",
        "Test-Path",
        "Where-Object",
        "Write-HrwError",
        "ConvertTo-HrwProxy",
        "ConvertTo-HrwSocketStatus",
        "Read-HrwHttpStatusLine",
        "Read-HrwEvents",
        "Test-HrwEndpoint",
    )
}
# The version of this engine's handling of the probe bootstrap (run_probe); raise it when
# that handling changes, and probe_blocks.BOOTSTRAP must name the same version.
BOOTSTRAP_ANSWER = 2  # 2: reads the proxy password line before the script
_ECHO = re.compile(r"^(?:echo|write-output|write-host)\s+(.+)$", re.IGNORECASE)


def _output(stdout: str = "", stderr: bytes = b"", code: int = 0) -> CommandOutput:
    return CommandOutput(stdout=stdout.encode("utf-8"), stderr=stderr, exit_code=code)


def _lines(lines: list[str]) -> str:
    return "".join(line + "\r\n" for line in lines)


def command_not_found(name: str, code_line: str = "", line_no: int = 1) -> bytes:
    """Return the CLIXML stderr of 5.1's CommandNotFoundException for ``name``."""
    shown = code_line.strip() or name
    column = shown.find(name) + 1 if name in shown else 1
    return error_stream(
        [
            f"{name} : The term '{name}' is not recognized as the name of a cmdlet, function, "
            "script file, or operable program. Check the spelling of the name, or if a path "
            "was included, verify that the path is correct and try again.",
            f"At line:{line_no} char:{column}",
            f"+ {shown}",
            "+ " + " " * (column - 1) + "~" * len(name),
            f"    + CategoryInfo          : ObjectNotFound: ({name}:String) [], "
            "CommandNotFoundException",
            "    + FullyQualifiedErrorId : CommandNotFoundException",
            " ",
        ]
    )


def _unknown_code(code: str, block: str = "") -> CommandOutput:
    """Fail like PowerShell on the first command in ``code`` that the emulator cannot run.

    Commands the known probe blocks use are skipped; when a changed ``block`` uses only
    those, the error says plainly that the emulator does not know this version of it.
    """
    for number, line in enumerate(code.replace("\r\n", "\n").split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        for found in _VERB_NOUN.finditer(_STRINGS.sub("''", stripped)):
            name = found.group(0)
            if name.lower() not in _KNOWN_COMMANDS:
                return _output(stderr=command_not_found(name, stripped, number), code=1)
        if not block:
            words = _STRINGS.sub("''", stripped).split()
            if words and words[0].lower() not in _KNOWN_COMMANDS:
                return _output(stderr=command_not_found(words[0], stripped, number), code=1)
    if block:
        message = (
            f"hrw-lab emulator: the probe block '{block}' differs from the version this "
            "emulator answers; update lab/winrm_emulator (probe_blocks.py, ps_sections.py)."
        )
    else:
        message = "hrw-lab emulator: this command is not one the emulated host can answer."
    return _output(stderr=error_stream([message]), code=1)


def _cmd(words: list[str], host: HostConfig) -> CommandOutput:
    """Answer a command run by cmd.exe (the WinRM shell's default interpreter)."""
    verb = words[0].lower()
    if verb in ("hostname", "hostname.exe"):
        return _output(host.name + "\r\n")
    if verb == "echo":
        return _output(" ".join(words[1:]) + "\r\n")
    message = (
        f"'{words[0]}' is not recognized as an internal or external command,\r\n"
        "operable program or batch file.\r\n"
    )
    return CommandOutput(stdout=b"", stderr=message.encode("utf-8"), exit_code=9009)


def _powershell_text(code: str, host: HostConfig) -> CommandOutput:
    """Answer a short PowerShell command that is not the probe."""
    text = code.strip()
    echo = _ECHO.match(text)
    if echo:
        return _output(echo.group(1).strip().strip("'\"") + "\r\n")
    if text.lower() in ("hostname", "$env:computername"):
        name = host.name.upper() if text.startswith("$") else host.name
        return _output(name + "\r\n")
    return _unknown_code(text)


def run_probe(stdin: bytes, host: HostConfig, now: datetime | None = None) -> CommandOutput:
    """Answer the probe script sent on ``stdin`` block by block, from the host's profile.

    Stops at the first block it does not know, with PowerShell's CommandNotFoundException,
    after printing what the blocks before it printed (as a real run would have).
    """
    text = stdin.decode("utf-8", errors="replace").replace("\r\n", "\n")
    params_line, _, rest = text.partition("\n")
    secret_line, _, script = rest.partition("\n")
    try:
        document = base64.b64decode(params_line.strip(), validate=True).decode("utf-8")
        params = json.loads(document)
        if not isinstance(params, dict):
            raise ValueError("not an object")
        secret = base64.b64decode(secret_line.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        lines = [
            'Exception calling "FromBase64String" with "1" argument(s): "The input is not a '
            "valid Base-64 string as it contains a non-base 64 character, more than two "
            'padding characters, or an illegal character among the padding characters. "',
        ]
        return _output(stderr=error_stream(lines), code=1)
    # What PowerShell's logging would record of this run, were it on: the script block
    # text (event 4104) and the parameters bound to commands (4103): the script block's
    # $ParamsB64 and ConvertFrom-Json's input. The password line is read by a .NET call.
    record_script_log(
        host,
        [
            {"event": 4104, "script_block": script},
            {"event": 4103, "command": "scriptblock", "parameter": "ParamsB64",
             "value": params_line.strip()},
            {"event": 4103, "command": "ConvertFrom-Json", "parameter": "InputObject",
             "value": document},
        ],
    )  # fmt: skip
    regions, stray = split_regions(script)
    state = RunState(host=host, params=params, now=now or datetime.now(UTC), proxy_secret=secret)
    printed: list[str] = []
    started = False
    for name, body in regions:
        if not known_block(name, body) or (name != "preamble" and not started):
            failed = _unknown_code(body, name)
            return CommandOutput(_lines(printed).encode("utf-8"), failed.stderr, 1)
        if name == "preamble":
            started = True
            continue
        state.code[name] = body
        printed += ANSWERS[name](state)
    if stray:
        failed = _unknown_code("\n".join(stray))
        return CommandOutput(_lines(printed).encode("utf-8"), failed.stderr, 1)
    return _output(_lines(printed))


def record_script_log(host: HostConfig, entries: list[dict[str, Any]]) -> None:
    """Append ``entries`` (one JSON line each) to the host's script log, if it keeps one.

    Why: the lab tests read it to prove that no secret reaches what Windows PowerShell's
    script block and module logging would record on a real host.
    """
    if not host.script_log:
        return
    with open(host.script_log, "a", encoding="utf-8") as log:
        for entry in entries:
            log.write(json.dumps({"time": datetime.now(UTC).isoformat(), **entry}) + "\n")


def _decode_encoded(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _powershell(words: list[str], stdin: ProcessInput, host: HostConfig) -> CommandOutput:
    """Answer ``powershell <options>``: the probe bootstrap or a short command."""
    index = 1
    while index < len(words):
        option = words[index].lower().lstrip("-/")
        if option in _SWITCHES:
            index += 1
        elif option in _VALUED:
            index += 2
        elif option in _ENCODED and index + 1 < len(words):
            code = _decode_encoded(words[index + 1])
            if code is None:
                message = (
                    "Cannot process the command because the value specified with "
                    "-EncodedCommand is not properly encoded. The value must be Base64 "
                    "encoded.\r\n"
                )
                return CommandOutput(b"", message.encode("utf-8"), 1)
            # The command line (process creation, 4688) and the bootstrap (4104).
            record_script_log(
                host,
                [
                    {"event": 4688, "command_line": " ".join(words)},
                    {"event": 4104, "script_block": code},
                ],
            )
            if digest(code) == BOOTSTRAP.sha256:
                # Only the probe's bootstrap reads stdin, so only it waits for the stream's end.
                return run_probe(stdin.read_stdin(), host)
            return _powershell_text(code, host)
        elif option in _COMMAND:
            return _powershell_text(" ".join(words[index + 1 :]), host)
        else:
            return _powershell_text(" ".join(words[index:]), host)
    return _output()


def _in_codepage(output: CommandOutput, codepage: int) -> CommandOutput:
    """Return ``output`` (UTF-8) as a console in ``codepage`` writes it ('?' where it cannot)."""
    codec = CODEPAGES.get(codepage, "utf-8")
    if codec == "utf-8":
        return output

    def convert(data: bytes) -> bytes:
        return data.decode("utf-8").encode(codec, errors="replace")

    return CommandOutput(convert(output.stdout), convert(output.stderr), output.exit_code)


def run_command(
    command: str, arguments: list[str], stdin: ProcessInput | bytes, host: HostConfig
) -> CommandOutput:
    """Return what the emulated Windows host prints for one WinRM command.

    ``command`` may hold the whole command line (pywinrm's run_cmd without arguments) or
    just the program, with ``arguments`` holding the rest. ``stdin`` is the running process's
    input (or, for tests, all of it as UTF-8 bytes). Output is written in the shell's code
    page, except the probe's: its script switches the console's output encoding to UTF-8.
    """
    given = GivenInput(stdin) if isinstance(stdin, bytes) else stdin
    words = " ".join([command, *arguments]).split()
    if not words:
        return _output()
    if _POWERSHELL.match(words[0]):
        output = _powershell(words, given, host)
        probe = output.stdout.startswith(b"@@HRW") or b"\n@@HRW" in output.stdout
        return output if probe else _in_codepage(output, given.codepage)
    return _in_codepage(_cmd(words, host), given.codepage)
