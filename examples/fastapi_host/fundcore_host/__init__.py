"""fundcore REST host: FastAPI over the `fundcore` engine (docs/apis.md, REST).

``fundcore_host.create_app`` is :func:`fundcore_host.app.create_app`, imported on first use so
that ``python -m fundcore_host.token`` does not load the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
