"""Sequential digits: an 8x8 digit read one pixel per step, plain or with its pixels permuted.

The small form of sequential and permuted MNIST (Le et al. 2015): scikit-learn's 8x8 digits
are read pixel by pixel, row after row, so each image is a sequence of T = 64 steps of one
value in [0, 1], and the class is read from the recurrent layer's last hidden state through a
linear head.  The strokes that tell a 3 from an 8 lie tens of steps before the end.  With
``permuted=True`` one fixed random permutation (seeded) reorders the 64 pixels of every image:
neighbouring pixels land far apart in time and the task needs longer memory still.

The yardsticks: the majority class, and logistic regression on the flattened 64 pixels (which
sees every pixel at once and does not care about their order, so it scores the same on both).

Example:
    >>> from rnnkit.tasks.pixels import train_digits
    >>> result = train_digits("lstm", steps=3, hidden_size=8, eval_every=2, progress=False)
    >>> result["T"], [point["step"] for point in result["curve"]], 0 <= result["test_accuracy"] <= 1
    (64, [0, 2, 3], True)
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..data.sequences import ClassifyData, Part, load_digits_data

PIXELS = 64  # 8 x 8: the sequence length


def pixel_permutation(seed: int = 0, size: int = PIXELS) -> np.ndarray:
    """A fixed random order of ``size`` pixels: the same seed gives the same order.

    Example:
        >>> order = pixel_permutation(0)
        >>> order.shape, sorted(order.tolist()) == list(range(64)), bool((order == pixel_permutation(0)).all())
        ((64,), True, True)
    """
    return np.random.default_rng(seed).permutation(size)


def pixel_digits(permuted: bool = False, seed: int = 0, limit: int | None = None) -> ClassifyData:
    """The digits of ``rnnkit.data.sequences.load_digits_data`` (its split 70/10/20, pixels in [0, 1]), each as
    64 steps of one pixel, row by row, or in the order of ``pixel_permutation(seed)`` when ``permuted``.

    Parts hold x (N, 64, 1) float32, lengths (N,) all 64, y (N,).

    Example:
        >>> data = pixel_digits(permuted=True, seed=0)
        >>> data.train.x.shape, data.input_size, data.name
        ((1258, 64, 1), 1, 'permuted digits')
    """
    data = load_digits_data(seed, limit)
    order = pixel_permutation(seed) if permuted else np.arange(PIXELS)

    def by_pixel(part: Part) -> Part:
        x = part.x.reshape(len(part), PIXELS, 1)[:, order]  # (N, 64, 1): step t reads pixel order[t]
        return Part(np.ascontiguousarray(x), np.full(len(part), PIXELS, dtype=np.int64), part.y)

    encoding = {**data.encoding, "steps": PIXELS, "features": 1, "offset": data.encoding["offset"][:1],
                "scale": data.encoding["scale"][:1], "pixel_order": order.tolist()}  # fmt: skip
    name = "permuted digits" if permuted else "sequential digits"
    return replace(data, name=name, train=by_pixel(data.train), val=by_pixel(data.val), test=by_pixel(data.test),
                   input_size=1, encoding=encoding)  # fmt: skip


def prior_nats(train_y: np.ndarray, test_y: np.ndarray, num_classes: int) -> float:
    """Cross-entropy on ``test_y`` of predicting the training class frequencies for every image (nats).

    Example:
        >>> round(prior_nats(np.array([0, 1]), np.array([0, 1, 1]), 2), 4)  # ln 2
        0.6931
    """
    prior = np.bincount(train_y, minlength=num_classes) / len(train_y)
    return float(-np.mean(np.log(np.maximum(prior[test_y], 1e-12))))


def train_digits(
    cell: str = "lstm",
    permuted: bool = False,
    steps: int = 2000,
    hidden_size: int = 64,
    learning_rate: float = 5e-3,
    batch_size: int = 64,
    seed: int = 0,
    eval_every: int = 100,
    clip: float = 1.0,
    backend: str = "auto",
    progress: bool = True,
    data: ClassifyData | None = None,
) -> dict:
    """Train a many-to-one classifier (``SequenceClassifier``, last hidden state -> linear) on the
    digits read pixel by pixel, with Adam on shuffled minibatches of the training part.

    ``data``: the ``pixel_digits(permuted, seed)`` to use (loaded if None; give it to share one
    load between runs).  The curve is scored on the test part every ``eval_every`` steps (nothing
    is selected on it: the model of the last step is the result).

    Returns a dict with task, cell, backend, T (64), steps, seconds, test_accuracy, test_nats
    (cross-entropy), baseline (the class-prior cross-entropy, nats), curve (a list of {step,
    test_nats, test_accuracy}) and the trained model.

    Example:
        >>> r = train_digits("gru", permuted=True, steps=2, hidden_size=8, progress=False)
        >>> r["task"], r["baseline"] > 2.2
        ('permuted digits', True)
    """
    from .classify import SequenceClassifier
    from .memory import _progress

    if steps < 1 or hidden_size < 1 or batch_size < 1 or eval_every < 1:
        raise ValueError(
            "Expected steps, hidden size, batch size and eval_every >= 1. "
            f"Received: {steps}, {hidden_size}, {batch_size}, {eval_every}"
        )
    data = data if data is not None else pixel_digits(permuted, seed)
    task = data.name
    torch.manual_seed(seed)
    C = len(data.classes)
    model = SequenceClassifier(num_classes=C, input_size=1, hidden_size=hidden_size, cell=cell, backend=backend)
    train_x, train_y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)  # (N, 64, 1), (N,)
    test_x, test_y = torch.from_numpy(data.test.x), torch.from_numpy(data.test.y)
    baseline = prior_nats(data.train.y, data.test.y, C)

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            logits = model(test_x)  # (N, C)
        model.train()
        return {"test_nats": nn.functional.cross_entropy(logits, test_y).item(),
                "test_accuracy": (logits.argmax(-1) == test_y).float().mean().item()}  # fmt: skip

    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    shuffle = torch.Generator().manual_seed(seed)
    order, position = torch.randperm(len(train_y), generator=shuffle), 0
    curve: list[dict[str, float]] = [{"step": 0, **evaluate()}]
    bar, bar_task = _progress(progress, f"{task} {cell}", steps)
    start = time.perf_counter()
    with bar:
        for step in range(1, steps + 1):
            if position + batch_size > len(order):  # a new epoch: reshuffle
                order, position = torch.randperm(len(train_y), generator=shuffle), 0
            index = order[position : position + batch_size]
            position += batch_size
            loss = nn.functional.cross_entropy(model(train_x[index]), train_y[index])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip or math.inf)
            optimizer.step()
            if step % eval_every == 0 or step == steps:
                curve.append({"step": step, **evaluate()})
                bar.update(bar_task, score=f"test accuracy {curve[-1]['test_accuracy']:.3f}")
            bar.advance(bar_task)
    seconds = time.perf_counter() - start
    return {"task": task, "cell": cell, "backend": model.rnn.backend, "T": PIXELS, "steps": steps,
            "seconds": seconds, "baseline": baseline, **curve[-1], "curve": curve, "model": model}  # fmt: skip
