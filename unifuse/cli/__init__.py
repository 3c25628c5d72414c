"""Command-line interface (`unifuse ...`)."""
