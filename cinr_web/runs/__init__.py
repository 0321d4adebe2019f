"""CINR app: runs."""
