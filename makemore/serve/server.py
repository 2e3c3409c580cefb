"""Run the app under uvicorn: load the runs once, check the port, warn off loopback; Ctrl-C/SIGTERM stop it."""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading

import uvicorn

from ..config import ConfigError
from .app import create_app
from .loading import load_runs

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_port(host: str, port: int) -> None:
    """A port this process can listen on, or a one-line error (uvicorn would log it and exit)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port number: give one from 1 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port or --host") \
                from None


def serve(paths: list[str], host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve the runs under paths until interrupted; the exit code."""
    check_port(host, port)
    runs = load_runs(paths)
    for name, run in runs.items():
        print(f"run {name}: {run.model_type}, {run.model.num_params():,} parameters", file=sys.stderr)
    if host not in LOOPBACK:
        print(f"makemore: warning: --host {host} lets other machines reach the API, which has no authentication; "
              f"leave --host out (127.0.0.1) unless you mean that", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {len(runs)} run(s) at http://{shown}:{port}/ (API at /api/..., OpenAPI page at /docs); "
          f"Ctrl-C stops it", file=sys.stderr, flush=True)
    with stop_on_sigterm():
        uvicorn.run(create_app(runs), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    print("makemore serve: stopped", file=sys.stderr)
    return 0


class Stopped(Exception):
    """SIGTERM arrived: uvicorn has shut down gracefully and passes the signal on; end here, exit 0."""


@contextlib.contextmanager
def stop_on_sigterm():
    """uvicorn shuts down on SIGINT or SIGTERM, then raises the signal again: end quietly on either."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except (Stopped, KeyboardInterrupt):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
