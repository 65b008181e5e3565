"""The FastAPI application factory: routers, error handlers, shared state."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

from api.db import make_engine, make_session_factory
from api.dispatch import Dispatcher
from api.errors import install_error_handlers
from api.routes import (
    datasets,
    enhancements,
    health,
    images,
    institutions,
    keys,
    microscopes,
    pairings,
    pairs,
    training_jobs,
    versions,
)
from api.settings import Settings, get_settings
from api.storage import make_store
from pairscope import __version__

STATIC = Path(__file__).resolve().parent / "static"

DESCRIPTION = """
Pairscope pairs low-end wide-field microscopes with high-end reference microscopes at other
institutions and learns, per pairing, a generator that turns wide-field images into
confocal-like ones. Authenticate with `Authorization: Bearer <API key>`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Pairscope", version=__version__, description=DESCRIPTION)
    engine = make_engine(settings)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.store = make_store(settings)
    app.state.dispatcher = Dispatcher(settings)
    install_error_handlers(app)

    v1 = APIRouter(prefix="/api/v1")
    for module in (
        institutions,
        microscopes,
        pairings,
        images,
        pairs,
        datasets,
        training_jobs,
        versions,
        enhancements,
        keys,
    ):
        v1.include_router(module.router)
    app.include_router(health.router)
    app.include_router(v1)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        """A small page: pairings, training progress and curves, versions and their reports."""
        return FileResponse(STATIC / "index.html")

    return app
