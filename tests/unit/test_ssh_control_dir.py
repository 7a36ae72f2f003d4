"""The SSH control-socket folder is private: made with mkdtemp (0700), owned by us, checked
on every use, so another user cannot pre-create it and receive the master sockets."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from hrw_preflight.hosts import connections
from hrw_preflight.hosts.connections import ConnectOptions, HostUnreachable, open_host
from hrw_preflight.hosts.selection import parse_hosts_option
from hrw_preflight.hosts.targets import HostDefaults

NOBODY = 65534


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(connections, "_CONTROL", None, raising=False)
    return tmp_path


def _socket_dir() -> str:
    [target] = parse_hosts_option(["ssh://root@192.0.2.9"], [], HostDefaults())
    host = open_host(target, ConnectOptions())
    return os.path.dirname(str(host.backend.controlpath))


def test_a_pre_created_folder_of_the_old_name_is_not_used(private_tmp: Path) -> None:
    planted = private_tmp / f"hrw-ssh-{os.getuid()}-{os.getpid()}"
    planted.mkdir(mode=0o777)
    os.chmod(planted, 0o777)
    os.chown(planted, NOBODY, NOBODY)
    folder = _socket_dir()
    assert Path(folder) != planted and Path(folder).parent == private_tmp
    info = os.lstat(folder)
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()
    assert os.path.basename(folder).startswith(f"hrw-ssh-{os.getuid()}-")


def test_one_folder_per_process_checked_on_every_use(private_tmp: Path) -> None:
    first = _socket_dir()
    assert _socket_dir() == first
    os.chmod(first, 0o755)  # widened after creation: refused, with the reason
    with pytest.raises(HostUnreachable, match=r"not private .*mode 0755"):
        _socket_dir()
    os.chmod(first, 0o700)
    os.chown(first, NOBODY, NOBODY)
    with pytest.raises(HostUnreachable, match=rf"owner uid {NOBODY}"):
        _socket_dir()
    os.chown(first, os.geteuid(), os.getegid())
    connections.remove_control_dir()
    assert not os.path.exists(first)


def test_threads_opening_hosts_at_once_share_one_folder(
    private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe process opens hosts from many threads: one folder, none left orphaned."""
    from concurrent.futures import ThreadPoolExecutor

    real_mkdtemp = tempfile.mkdtemp

    def slow_mkdtemp(*args: Any, **kwargs: Any) -> str:
        time.sleep(0.02)  # widen the window between "no folder yet" and "folder made"
        return str(real_mkdtemp(*args, **kwargs))

    monkeypatch.setattr(tempfile, "mkdtemp", slow_mkdtemp)

    with ThreadPoolExecutor(max_workers=16) as pool:
        folders = set(pool.map(lambda _: _socket_dir(), range(64)))
    assert len(folders) == 1
    assert [p.name for p in private_tmp.iterdir()] == [Path(folders.pop()).name]


def test_after_the_folder_is_removed_the_next_host_gets_a_new_one(private_tmp: Path) -> None:
    first = _socket_dir()
    connections.remove_control_dir()
    second = _socket_dir()
    assert second != first and os.path.isdir(second) and not os.path.exists(first)
    os.rmdir(second)  # removed behind our back: a new private one, not an error
    third = _socket_dir()
    assert os.path.isdir(third) and stat.S_IMODE(os.lstat(third).st_mode) == 0o700
