"""pluggy's markers for vft's hooks: a leaf module, so every layer can mark an implementation.

Plugins import them from `vft.plugin`; the specs are in vft/core/plugins/hookspecs.py.
"""

import pluggy

PROJECT = "vft"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
