"""Entry point placeholder."""
