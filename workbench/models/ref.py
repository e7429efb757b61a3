"""A model as the registry knows it, before anything is loaded (a leaf: imports no
other part of workbench but the GGUF layer)."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.gguf import GGUFError, ModelInfo, read_model_info


@dataclass(frozen=True)
class ModelRef:
    """A model as the registry knows it, before anything is loaded."""

    name: str
    """Registry name, unique within a listing."""
    path: str
    """The .gguf file, or the base URL for a served model."""
    source: str
    """bundled, directory, hf-cache, ollama, lmstudio, endpoint, path."""
    served_model: str | None = None
    """For endpoints: the model name the server expects."""
    api_key_env: str | None = None
    """For endpoints: environment variable holding the API key."""
    mmproj: str | None = None
    """A vision model's projector (``mmproj-*.gguf``) found beside it or named in
    workbench.toml; None: a text-only model (or a served one: the server holds it)."""

    @property
    def is_endpoint(self) -> bool:
        return self.source == "endpoint"

    def info(self) -> ModelInfo:
        """GGUF metadata (header only). Raises GGUFError for endpoints and bad files."""
        if self.is_endpoint:
            raise GGUFError(f"{self.name} is served at {self.path}; no local GGUF header")
        return read_model_info(self.path)
