"""`python -m vft.train --run-dir DIR` (what a plan's trainer process runs)."""

import sys

from vft.train.main import main

sys.exit(main())
