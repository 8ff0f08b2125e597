"""`python -m vft_testserver --port N [--delay S] ...`: serve until stopped."""

from vft_testserver.server import main

raise SystemExit(main())
