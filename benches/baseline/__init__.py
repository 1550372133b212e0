"""sqlite3 baseline with the same rules and Python API shape as fundcore (see sqlite_engine.py)."""
from .sqlite_engine import *  # noqa: F401,F403
from .sqlite_engine import Engine  # noqa: F401
