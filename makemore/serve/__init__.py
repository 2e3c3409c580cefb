"""makemore serve: an HTTP API (FastAPI) and a web page for sampling and scoring trained runs.

Needs the serve extra (pip install -e '.[serve]'); the core package does not import this.
"""

from .app import create_app
from .loading import load_runs
from .server import serve

__all__ = ["create_app", "load_runs", "serve"]
