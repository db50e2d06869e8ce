"""The `hodei` command line (entry point: hodei.cli.main:main)."""
