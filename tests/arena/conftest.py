"""Fixtures for the arena tests (defined in helpers.py)."""

from .helpers import launched, pg_url, postgres, real_pool

__all__ = ["launched", "pg_url", "postgres", "real_pool"]
