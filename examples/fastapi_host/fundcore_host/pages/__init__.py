"""The pages: the client portal at ``/`` and the operator console at ``/ops``, server-rendered
HTML (``templates/``) with one style sheet (``static/``) and no script, on the same engine calls
as the JSON API. Sign-in through the pages gives a session cookie (``auth/sessions.py``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import account, console, portal, statement
from .access import install_page_handlers
from .render import TEMPLATES_DIR

STATIC_DIR = TEMPLATES_DIR.parent / "static"

#: The pages' routers (none of them is in the OpenAPI document).
PAGE_ROUTERS = (account.router, portal.router, statement.router, console.router)


def install_pages(app: FastAPI) -> None:
    """Adds the pages, their static files and their error answers to ``app``."""
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_page_handlers(app)
