"""The built-in GRPO trainer (TRL) that a plan's trainer process runs: `python -m vft.train`.

Heavy imports (torch, transformers, trl, verifiers) live inside the functions that need
them; importing this package is cheap.
"""
