"""CINR app: datasets."""
