"""`python -m abacus` runs the CLI."""

from abacus.cli.main import main

if __name__ == "__main__":
    main()
