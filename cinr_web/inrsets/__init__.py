"""CINR app: inrsets."""
