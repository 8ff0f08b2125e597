"""Package data: shipped in the wheel as `vft.recipes` (see pyproject.toml)."""
