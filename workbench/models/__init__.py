"""Everything about model files: GGUF headers, the registry, downloads, memory."""
