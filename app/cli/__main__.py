"""`python -m app.cli`: the same as the console script `payletter-gateway`."""

from app.cli import main

raise SystemExit(main())
