"""``python -m edge`` is ``platewatch``."""

from edge.cli import main

raise SystemExit(main())
