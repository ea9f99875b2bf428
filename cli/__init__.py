"""The `ntr` command line: one module per command."""
