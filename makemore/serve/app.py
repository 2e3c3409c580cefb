"""The HTTP API and the page: create_app(runs) serves runs by name; every model step runs off the event loop.

Requests share only read-only state: the loaded runs (models in eval mode, their tables built at load
time by loading.warm_up). Each sample call seeds its own torch.Generator, so concurrent requests
neither share nor disturb a random state.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..api import Run
from ..config import ConfigError
from ..constrain import ConstraintError
from ..data import DataError
from ..likely import SearchError
from ..models import ModelConfigError
from ..sample import SampleError
from ..score import ScoreError
from . import views
from .errors import ApiError, StrictJSONResponse, as_keys, install, log, shorten
from .schemas import SampleRequest, ScoreRequest

STATIC = Path(__file__).parent / "static"
# what the Python API raises for a request it refuses (the command line's user errors, less files and exports)
REQUEST_ERRORS = (ConfigError, DataError, SampleError, ScoreError, ConstraintError, SearchError, ModelConfigError)


def pick(runs: dict[str, Run], name: str | None) -> tuple[str, Run]:
    """The run named name, or the first served when none is named; an unknown name is a 404."""
    if name is None:
        name = next(iter(runs))
    if name not in runs:
        served = ", ".join(list(runs)[:10]) + (", ..." if len(runs) > 10 else "")
        raise ApiError(404, f"no run named {shorten(name, 60)!r} is served: choose one of {served} (GET /api/runs)")
    return name, runs[name]


async def call(fn, *args) -> dict:
    """fn(*args) in a worker thread; a user error is a 400 with its message, anything else a 500 of one line."""
    try:
        return await run_in_threadpool(fn, *args)
    except REQUEST_ERRORS as e:
        raise ApiError(400, shorten(as_keys(str(e)), 400)) from None
    except Exception as e:  # a model failure: logged in full here, one line to the client, and serve on
        log.exception("model error in %s", getattr(fn, "__name__", "a model call"))
        raise ApiError(500, f"the model failed on this request ({type(e).__name__}); the server is still "
                            f"serving") from None


def create_app(runs: dict[str, Run]) -> FastAPI:
    """The app serving these runs (names as /api/runs lists them; the first is the default)."""
    if not runs:
        raise ValueError("create_app needs at least one run")
    app = FastAPI(title="makemore", version=__version__, default_response_class=StrictJSONResponse,
                  description="Sample and score words with trained makemore runs.")
    install(app)
    infos = [views.run_info(name, run) for name, run in runs.items()]

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "runs": len(runs)}

    @app.get("/api/runs")
    def list_runs() -> dict:
        return {"runs": infos, "default": infos[0]["name"]}

    @app.post("/api/sample")
    async def sample(req: SampleRequest) -> dict:
        name, run = pick(runs, req.run)
        return {"run": name, **await call(views.sample_words, run, req)}

    @app.post("/api/score")
    async def score(req: ScoreRequest) -> dict:
        name, run = pick(runs, req.run)
        return {"run": name, **await call(views.score_words, run, req)}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
