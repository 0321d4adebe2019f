"""Raw-weights probe for a cached digits INR dataset: raw_probe.py FILE"""

import sys

from training.data import INRDataset
from training.probe import linear_probe, raw_weight_features

ds = INRDataset.load(sys.argv[1])
tr, te = ds.train(), ds.test()
acc = linear_probe(
    raw_weight_features(ds.spec, tr.params), tr.labels, raw_weight_features(ds.spec, te.params), te.labels
).accuracy
print(
    sys.argv[1],
    ds.meta.get("fit"),
    len(tr),
    len(te),
    f"raw-weights probe {acc:.2f} %",
    f"PSNR {float(ds.psnr.mean()):.1f}",
)
