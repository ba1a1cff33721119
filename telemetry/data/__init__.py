"""Package data: bundled country borders (see README.md)."""
