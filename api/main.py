"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from api import metrics, webhooks_api
from api.body_limit import BodyLimit
from api.errors import install_error_handlers
from api.ratelimit import RateLimit, install_rate_limit
from api.routes import batches, dashboard, events, health, jobs, page_images, pages, plan, queue
from tessera.config import Settings
from workers.celery_app import configure
from workers.enqueue import CeleryEnqueuer
from workers.runtime import Runtime


def create_app(settings: Settings, worker_supervisor: object | None = None) -> FastAPI:
    app = FastAPI(title="Tessera", version="1.0", summary="Documents in, text and chart tables out.")
    app.state.runtime = Runtime(settings)
    app.state.celery = configure(settings)
    app.state.enqueuer = CeleryEnqueuer(app.state.celery)
    app.state.worker_supervisor = worker_supervisor
    install_error_handlers(app)
    app.add_middleware(BodyLimit, settings=settings)
    install_rate_limit(app)
    app.include_router(health.router)
    app.include_router(jobs.router, dependencies=[RateLimit])
    app.include_router(pages.router, dependencies=[RateLimit])
    app.include_router(page_images.router, dependencies=[RateLimit])
    app.include_router(plan.router, dependencies=[RateLimit])
    app.include_router(queue.router, dependencies=[RateLimit])
    app.include_router(events.router, dependencies=[RateLimit])
    app.include_router(batches.router, dependencies=[RateLimit])
    app.include_router(webhooks_api.router, dependencies=[RateLimit])
    app.include_router(dashboard.router)
    app.mount("/static", dashboard.static_files(), name="static")
    app.state.metrics_registry = metrics.metrics_registry(app.state.runtime)
    app.include_router(metrics.router)
    return app
