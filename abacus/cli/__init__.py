"""The `abacus` command line, one module per command group (the outermost layer)."""
