"""The hub's aiohttp application: routes and middlewares, around an open database.

    db = await Database.open(url)
    app = create_app(cfg, db)

The caller owns the database (opens it before, closes it after); cloud/service.py runs
the application, tests drive it with aiohttp's test client.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from cloud.api import (
    catalog,
    courier,
    courier_door,
    enroll,
    erp,
    events,
    health,
    openapi,
    orders,
    payments,
    platforms,
    stock,
)
from cloud.api.appkeys import VERSION
from cloud.api.auth import auth_middleware
from cloud.api.errors import error_middleware
from cloud.config import HubConfig
from cloud.db.engine import Database
from cloud.limits import web as limits
from cloud.root import HubServices
from cloud.web import courier_page, dashboard, entry

MIB = 1024 * 1024


def hub_version() -> str:
    try:
        return version("shopgate")
    except PackageNotFoundError:
        return "unknown"


def create_app(cfg: HubConfig, db: Database) -> web.Application:
    app = web.Application(
        client_max_size=cfg.http.max_body_mb * MIB,
        # Errors outermost, so that a refusal by auth is JSON as well.
        middlewares=[error_middleware, auth_middleware],
    )
    # Every service, built once with its collaborators (cloud/root.py).
    HubServices(cfg, db).install(app)
    app[VERSION] = hub_version()
    limits.attach(app)  # the guess counts (cloud/limits), before the routes that use them
    health.add_routes(app)
    events.add_routes(app)
    platforms.add_routes(app)
    orders.add_routes(app)
    stock.add_routes(app)
    catalog.add_routes(app)
    courier.add_routes(app)
    enroll.add_routes(app)
    courier_door.add_routes(app)
    courier_page.add_routes(app)
    entry.add_routes(app)
    dashboard.add_routes(app)
    payments.add_routes(app)
    erp.attach(app)
    # Documents every route of the app, as the router holds them at the first request.
    openapi.add_routes(app)
    return app
