"""Four plugin modules, each broken in its own way; this package module itself is fine."""
