"""Built-in backends; each registers itself through the same hook an external plugin uses."""
