"""CINR dashboard (layer 4): Django templates, small plain JS and Plotly charts."""
