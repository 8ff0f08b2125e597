"""The plugin machinery: hook specs, the registry, and the Backend base class."""
