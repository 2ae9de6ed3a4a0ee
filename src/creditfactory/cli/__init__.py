"""Command-line edge: the `creditfactory` command."""
