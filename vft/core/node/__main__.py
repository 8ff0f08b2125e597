"""`python -m vft.core.node RUN_DIR ...`: see vft/core/node/entry.py."""

import sys

from vft.core.node.entry import main

sys.exit(main())
