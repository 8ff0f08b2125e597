"""Package data: shipped in the wheel as `vft.configs` (see pyproject.toml)."""
