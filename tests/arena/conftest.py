"""Fixtures for the arena tests (defined in helpers.py)."""

from .helpers import launched, real_pool

__all__ = ["launched", "real_pool"]
