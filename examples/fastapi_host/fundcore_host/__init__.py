"""fundcore REST host: FastAPI over the `fundcore` engine (docs/apis.md, REST)."""

__all__ = ["create_app"]


def create_app(*args, **kwargs):  # noqa: D103 - thin lazy re-export
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)
