"""`python -m tunelab` runs the CLI."""

from tunelab.interfaces.cli import main

raise SystemExit(main())
