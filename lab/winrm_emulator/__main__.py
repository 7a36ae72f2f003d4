"""``python -m lab.winrm_emulator --config FILE``: serve one emulated host until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from lab.winrm_emulator.config import ConfigError, load
from lab.winrm_emulator.server import DEFAULT_ENGINE, create_server, load_engine


def main(argv: list[str] | None = None) -> int:
    """Serve the host described by ``--config`` on HTTP and HTTPS; return the exit status.

    Exits 0 after SIGTERM or SIGINT, 2 for a bad config or a port that cannot be bound.
    """
    parser = argparse.ArgumentParser(prog="python -m lab.winrm_emulator", description=__doc__)
    parser.add_argument("--config", required=True, help="host config JSON (mode 600)")
    parser.add_argument(
        "--engine",
        default=DEFAULT_ENGINE,
        help=f"module:function answering commands (default {DEFAULT_ENGINE})",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        host = load(args.config)
        server = create_server(host, load_engine(args.engine))
    except ConfigError as exc:
        print(f"winrm-emulator: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"winrm-emulator: cannot load engine {args.engine}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"winrm-emulator: cannot serve {args.config}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
