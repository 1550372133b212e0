"""Baselines with the same rules and Python API shape as fundcore: over sqlite3
(sqlite_engine.py, the package's default ``Engine``) and over PostgreSQL with psycopg 3
(pg_engine.py, imported on its own since it needs psycopg)."""
from .sqlite_engine import *  # noqa: F401,F403
from .sqlite_engine import Engine  # noqa: F401
