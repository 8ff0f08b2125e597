"""Importing this plugin fails, as it would with a dependency its author forgot to declare."""

import vft_broken_missing_dependency  # noqa: F401
