"""Linear probes on frozen features: multinomial logistic regression on standardised features (scikit-learn).

Also the two probe baselines of the results table: a randomly initialised encoder (`extract_features` on a fresh
encoder, `training.encoder.build_encoder`) and the raw flattened weights (`raw_weight_features`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import inr


@dataclass
class ProbeResult:
    """A fitted linear probe and its test-set evaluation."""

    accuracy: float  # percent, on the test features
    per_class_accuracy: list[float]  # percent per class (nan for a class absent from the test set)
    confusion: np.ndarray  # [C, C] int counts, rows = true class, columns = predicted
    probabilities: np.ndarray  # [M_test, C] class probabilities of the test features
    predictions: np.ndarray  # [M_test] predicted class ids
    class_names: list[str]
    scaler: StandardScaler
    classifier: LogisticRegression

    def predict_proba(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class probabilities `[M, C]` for new features `[M, D]` (columns follow `class_names`)."""
        x = feature_array(x)
        proba = self.classifier.predict_proba(self.scaler.transform(x))
        return _full_proba(proba, self.classifier.classes_, len(self.class_names))

    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)


def feature_array(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Features as a finite float64 `[M, D]` array (probe and t-SNE inputs)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [M, D], got shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    return x


def _full_proba(proba: np.ndarray, classes: np.ndarray, num_classes: int) -> np.ndarray:
    # The classifier only knows the classes seen in training; put its columns where they belong.
    out = np.zeros((proba.shape[0], num_classes))
    out[:, classes] = proba
    return out


def linear_probe(train_x: np.ndarray | torch.Tensor, train_y: np.ndarray | torch.Tensor,
                 test_x: np.ndarray | torch.Tensor, test_y: np.ndarray | torch.Tensor,
                 class_names: list[str] | None = None, *, c: float = 1.0, max_iter: int = 1000) -> ProbeResult:
    """Multinomial logistic regression (L2, inverse strength `c`) on standardised features; evaluated on the test
    set. Labels are class ids 0..C-1."""
    train_x, test_x = feature_array(train_x), feature_array(test_x)
    train_y = np.asarray(train_y.cpu() if isinstance(train_y, torch.Tensor) else train_y, dtype=np.int64)
    test_y = np.asarray(test_y.cpu() if isinstance(test_y, torch.Tensor) else test_y, dtype=np.int64)
    if train_x.shape[0] != train_y.shape[0] or test_x.shape[0] != test_y.shape[0]:
        raise ValueError("features and labels differ in length")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train features have {train_x.shape[1]} columns, test features {test_x.shape[1]}")
    if len(np.unique(train_y)) < 2:
        raise ValueError("a linear probe needs at least two classes in the training set")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    if class_names is None:
        class_names = [str(i) for i in range(num_classes)]
    if len(class_names) < num_classes:
        raise ValueError(f"{len(class_names)} class names for labels up to {num_classes - 1}")
    num_classes = len(class_names)
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=c, max_iter=max_iter)  # lbfgs: multinomial for more than two classes
    clf.fit(scaler.transform(train_x), train_y)
    proba = _full_proba(clf.predict_proba(scaler.transform(test_x)), clf.classes_, num_classes)
    pred = proba.argmax(axis=1)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (test_y, pred), 1)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, 100.0 * np.diag(confusion) / support, np.nan)
    return ProbeResult(accuracy=float(100.0 * (pred == test_y).mean()), per_class_accuracy=per_class.tolist(),
                       confusion=confusion, probabilities=proba, predictions=pred, class_names=list(class_names),
                       scaler=scaler, classifier=clf)


@torch.no_grad()
def extract_features(encoder: torch.nn.Module, dataset, device: torch.device | str | None = None,
                     batch_size: int = 256) -> torch.Tensor:
    """Frozen encoder features `[M, D]` (CPU float32) of every INR of `dataset` (an INRDataset, or a params dict)."""
    params = dataset if isinstance(dataset, dict) else dataset.params
    device = torch.device(device) if device is not None else next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    encoder.to(device)
    total = next(iter(params.values())).shape[0]
    out = []
    try:
        for start in range(0, total, batch_size):
            chunk = {k: v[start:start + batch_size].to(device) for k, v in params.items()}
            out.append(encoder.encode_params(chunk).float().cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, encoder.feature_dim)


def raw_weight_features(spec: inr.FieldSpec, params: inr.Params) -> torch.Tensor:
    """The raw-weights baseline: every INR's parameters flattened in `spec.param_shapes()` order, `[M, P]`."""
    batch = inr.check_params(spec, params)
    return torch.cat([params[name].reshape(batch, -1).float() for name in spec.param_shapes()], dim=1)
