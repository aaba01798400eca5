"""Command-line helpers used by main.py."""
