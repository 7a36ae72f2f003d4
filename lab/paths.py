"""Where the lab keeps its state: everything under ``.lab/`` at the repository root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Directories every Linux lab host replaces with its own (lab/linux_host.py): state under one
# of them would vanish inside the hosts, whose init and sshd read it after those mounts.
HOST_PRIVATE_DIRS = ("/opt", "/etc/opt", "/var/opt", "/home", "/root", "/run", "/tmp")
RELOCATED_STATE = Path("/var/lib/hrw-lab")


def default_state(root: Path) -> Path:
    """Return where the lab of the checkout at ``root`` keeps its state.

    ``<root>/.lab`` unless that lies in a directory the lab hosts replace (a checkout under
    /tmp or /root, say); then ``/var/lib/hrw-lab``, which every host still sees.
    """
    local = root / ".lab"
    if any(local.is_relative_to(d) for d in HOST_PRIVATE_DIRS):
        return RELOCATED_STATE
    return local


@dataclass(frozen=True)
class LabPaths:
    """Absolute paths of the lab's state, derived from the repository root.

    ``state_dir`` overrides where the state lives (tests use a temporary folder).
    """

    root: Path = REPO_ROOT
    state_dir: Path | None = None

    @property
    def state(self) -> Path:
        """Return the directory holding all lab state (``.lab/``, gitignored; see
        :func:`default_state`)."""
        if self.state_dir is not None:
            return self.state_dir
        return default_state(self.root) if self.root == REPO_ROOT else self.root / ".lab"

    @property
    def pki(self) -> Path:
        """Return the directory of CA and server certificates."""
        return self.state / "pki"

    @property
    def trusted_cas(self) -> Path:
        """Return the PEM bundle of the lab Azure CAs (the suite's extra trusted CAs)."""
        return self.pki / "trusted-cas.pem"

    @property
    def winrm_ca(self) -> Path:
        """Return the PEM of the CA that issued the WinRM HTTPS certificates."""
        return self.pki / "winrm-ca.pem"

    @property
    def ssh(self) -> Path:
        """Return the directory of the lab's SSH client key and known_hosts."""
        return self.state / "ssh"

    @property
    def ssh_key(self) -> Path:
        """Return the lab's private SSH key (root on every Linux host accepts it)."""
        return self.ssh / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """Return the known_hosts file listing every Linux host's ed25519 host key."""
        return self.ssh / "known_hosts"

    @property
    def hosts(self) -> Path:
        """Return the directory holding one subdirectory per lab host."""
        return self.state / "hosts"

    def host_dir(self, name: str) -> Path:
        """Return the state directory of one host."""
        return self.hosts / name

    @property
    def pids(self) -> Path:
        """Return the directory of pid files of the processes the lab started."""
        return self.state / "pids"

    @property
    def logs(self) -> Path:
        """Return the directory of the shared services' logs (endpoint, proxy)."""
        return self.state / "logs"

    @property
    def bin(self) -> Path:
        """Return the directory of helper binaries compiled for the lab."""
        return self.state / "bin"

    @property
    def idle(self) -> Path:
        """Return the compiled stand-in/init program (see lab/idle.c)."""
        return self.bin / "hrw-idle"

    @property
    def run_state(self) -> Path:
        """Return the JSON file describing the running lab (mode 600: holds passwords)."""
        return self.state / "lab-state.json"

    @property
    def inventory(self) -> Path:
        """Return ``inventories/lab.yml``, which exists only while the lab is up."""
        return self.root / "inventories" / "lab.yml"

    @property
    def keep(self) -> tuple[Path, ...]:
        """Return files under ``.lab/`` that lab-down leaves (the Makefile's apt stamp)."""
        return (self.state / ".apt-installed",)
