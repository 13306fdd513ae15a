"""`python -m tunelab` runs the CLI."""

from tunelab.interfaces.cli import main

if __name__ == "__main__":  # worker processes (spawn) import this module without running the CLI
    raise SystemExit(main())
