"""training: image sources and importers, INR datasets, the Relational Transformer encoder, SimCLR, the supervised
baseline, linear probes, embeddings and the reproduction CLI.

Layer 2 of CINR: depends on `inr`, torch, numpy, scikit-learn, openTSNE and Pillow; never on Django.
"""
