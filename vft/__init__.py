"""vft: one declarative recipe in, a GRPO training run on a Verifiers environment out."""

__version__ = "0.1.0"
