"""Test helpers that ship with the package: tiny GGUF fixtures and a llama.cpp probe."""

from workbench.testing.fixtures import FIXTURE_ARCHS, VARIANTS, fixture_hparams, write_fixture

__all__ = ["FIXTURE_ARCHS", "VARIANTS", "fixture_hparams", "write_fixture"]
