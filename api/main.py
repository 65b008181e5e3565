"""The FastAPI application factory: routers, error handlers, shared state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.db import make_engine, make_session_factory
from api.dispatch import Dispatcher
from api.docs_pages import install_docs
from api.errors import install_error_handlers
from api.metrics import ApiMetrics, MetricsMiddleware
from api.metrics import router as metrics_router
from api.openapi_responses import UNAUTHORIZED
from api.routes import (
    base_models,
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
from api.security_headers import SecurityHeadersMiddleware
from api.settings import Settings, get_settings
from api.storage import make_store
from pairscope import __version__

STATIC = Path(__file__).resolve().parent / "static"

DESCRIPTION = """
Pairscope pairs low-end wide-field microscopes with high-end reference microscopes at other
institutions and learns, per pairing, a generator that turns wide-field images into
confocal-like ones. Authenticate with `Authorization: Bearer <API key>`.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Close the database pool when the app stops, so no connection outlives it."""
    yield
    app.state.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Pairscope",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    engine = make_engine(settings)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.store = make_store(settings)
    app.state.dispatcher = Dispatcher(settings)
    app.state.metrics = ApiMetrics(settings, app.state.session_factory)
    install_error_handlers(app)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware)  # outermost: times and counts every answer
    install_docs(app)

    v1 = APIRouter(prefix="/api/v1", responses=UNAUTHORIZED)
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
        base_models,
    ):
        v1.include_router(module.router)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(v1)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def web_app() -> FileResponse:
        """The web app's shell; its modules and stylesheet come from /static/app."""
        return FileResponse(STATIC / "index.html")

    return app
