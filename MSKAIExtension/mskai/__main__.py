"""``python -m mskai`` is the ``mskai`` command."""

from mskai.cli import main

raise SystemExit(main())
