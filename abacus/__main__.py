"""`python -m abacus` runs the CLI."""

from abacus.cli import main

main()
