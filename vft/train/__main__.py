"""`python -m vft.train --run-dir DIR` (what a plan's trainer process runs)."""

import time

STARTED = time.monotonic()  # the start-up line counts from here (vft/train/console.py)

import sys  # noqa: E402
import warnings  # noqa: E402

# the stack's own deprecation notices (torch, transformers, trl, deepspeed) repeat every
# step and bury the progress lines; a user's script keeps Python's default filters
for category in (FutureWarning, DeprecationWarning, UserWarning):
    warnings.filterwarnings(
        "ignore", category=category, module=r"(torch|transformers|trl|accelerate|deepspeed)(\.|$)"
    )

from vft.train.main import main  # noqa: E402

sys.exit(main(started=STARTED))
