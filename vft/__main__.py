import sys

from vft.cli import main

sys.exit(main())
