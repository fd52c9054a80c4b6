"""`python -m sparkctl` runs the CLI."""

from sparkctl.cli import main

main()
