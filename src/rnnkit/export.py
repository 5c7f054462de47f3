"""Deployment formats of a language model: a self-contained safetensors directory, and an ONNX
graph of one generation step with the recurrent state as explicit inputs and outputs.

    export_safetensors("runs/text-20260101-120000", "exported/")  # model.safetensors, config.json, vocab.json
    model = load_exported("exported/")                             # the LanguageModel again
    export_onnx(model, "model.onnx")                               # one step, any batch size
    session = onnx_session("model.onnx")
    logits, state = run_onnx_step(session, token, state)           # token (B,) -> logits (B, V), new state

The ONNX graph is :class:`OnnxStep`: the model's step written with each cell's own
``input_projection`` and ``step`` over the layer's parameters, one layer after the other, so it
is plain matrix products and pointwise operations for every cell (peephole, CIFG, layer-norm
LSTM and GRU v1 included, which torch's own RNN export cannot express).

    inputs:  token (B,) int64,  h (L, B, H)  [, c (L, B, H) for the LSTM family]
    outputs: logits (B, V),     h_next (L, B, H)  [, c_next (L, B, H)]

With an adaptive-softmax head, ``logits`` are the full log-probabilities over the vocabulary
(``AdaptiveLogSoftmaxWithLoss.log_prob``, written as one concatenation: :func:`full_log_prob`),
which sampling treats exactly like logits.  The batch
axis is dynamic; the state starts at zeros, as ``LanguageModel.step(token, None)``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .cells import Params
from .language_model import LanguageModel

LANGUAGE_MODEL_TASKS = ("poetry", "text")
FORMATS = ("safetensors", "onnx")
DEFAULT_OPSET = 18
STATE_INPUTS = ("h", "c")
STATE_OUTPUTS = ("h_next", "c_next")


@dataclass
class ExportSource:
    """A language model read from a run directory or a model directory, with what travels with it."""

    model: LanguageModel
    task: str
    directory: Path
    vocab_json: str | None = None  # the vocabulary, as ``Vocabulary.to_json`` wrote it
    report: dict = field(default_factory=dict)

    def vocabulary(self):
        """The model's ``Vocabulary``; a ``ValueError`` when the directory has no vocab.json."""
        from .data.vocab import Vocabulary

        if self.vocab_json is None:
            raise ValueError(f"{str(self.directory)!r} holds a model but no vocab.json to encode text with.")
        return Vocabulary.from_json(self.vocab_json)


def read_language_model(directory: str | Path) -> ExportSource:
    """The best weights of a poetry or text run, or the model of a model directory (one written by
    ``PoetryModel.save`` or :func:`export_safetensors`), on the CPU in eval mode.

    A run's ``checkpoints/best.ckpt`` is preferred to its ``model.safetensors`` (written only when
    the run finishes); a model directory has only the latter.

    Example:
        >>> from rnnkit.tasks.poetry import SHIPPED_MODEL
        >>> source = read_language_model(SHIPPED_MODEL)
        >>> source.task, source.model.config["cell"], source.vocab_json is not None
        ('poetry', 'lstm', True)
    """
    from .train import read_run_config
    from .train.fit import model_state

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"Expected a run or model directory. Received: {str(directory)!r} is not a directory.")
    config = read_run_config(directory)
    train = config.get("train")
    task = config.get("task") or (train.get("task") if isinstance(train, dict) else None)
    model_config = config.get("model")
    if task not in LANGUAGE_MODEL_TASKS or not isinstance(model_config, dict):
        raise ValueError(
            f"Expected the directory of a language model (task one of {list(LANGUAGE_MODEL_TASKS)}, with a model "
            f"config). Received: {str(directory)!r} with task={task!r}."
        )
    model = LanguageModel(**model_config)
    best = directory / "checkpoints" / "best.ckpt"
    if best.is_file():
        model.load_state_dict(model_state(best))
    elif (directory / "model.safetensors").is_file():
        model.load_state_dict(_read_safetensors(directory / "model.safetensors"))
    else:
        raise ValueError(
            f"Expected weights in {str(directory)!r}: checkpoints/best.ckpt or model.safetensors. Received neither "
            "(a run that stopped before its first epoch ended?)."
        )
    vocab_path = directory / "vocab.json"
    vocab_json = vocab_path.read_text(encoding="utf-8") if vocab_path.is_file() else None
    report_path = directory / "report.json"
    report = config.get("report") or {}
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
    return ExportSource(model.eval(), task, directory, vocab_json, report)


def _read_safetensors(path: Path, device: str = "cpu") -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=device)
    except Exception as error:  # safetensors' SafetensorError: "Error while deserializing header: ..."
        from .train.checkpoints import CheckpointError

        raise CheckpointError(f"{path} is not a readable weights file (truncated or corrupt: {error}).") from None


def export_safetensors(run_or_model_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a self-contained model directory: ``model.safetensors`` (the weights), ``config.json``
    (``task``, the model's ``config``, the ``rnnkit`` version and the run's report) and
    ``vocab.json`` when the source has one.  Returns ``out_dir``.

    What reads it back: :func:`load_exported` (the model), ``rnnkit.tasks.poetry.load_model`` for
    poetry and ``rnnkit.tasks.text.load_run`` for text, ``rnnkit poetry generate --model`` and
    :func:`export_onnx` (through ``rnnkit export``).

    Example:
        >>> import tempfile
        >>> from rnnkit.tasks.poetry import SHIPPED_MODEL, load_model
        >>> out = export_safetensors(SHIPPED_MODEL, Path(tempfile.mkdtemp()) / "exported")
        >>> sorted(p.name for p in out.iterdir())
        ['config.json', 'model.safetensors', 'vocab.json']
        >>> load_model(out).model.config == load_exported(out).config
        True
    """
    from safetensors.torch import save_file

    from . import __version__

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"Expected --out to be a directory. Received: {str(out_dir)!r} is a file.")
    if out_dir.is_dir() and out_dir.resolve() == Path(run_or_model_dir).resolve():
        raise ValueError(f"Expected an output directory other than the source. Received: {str(out_dir)!r} for both.")
    source = read_language_model(run_or_model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.contiguous() for name, tensor in source.model.state_dict().items()}
    save_file(weights, str(out_dir / "model.safetensors"), metadata={"format": "pt", "rnnkit": __version__})
    config = {"task": source.task, "model": source.model.config, "rnnkit": __version__, "report": source.report}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    if source.vocab_json is not None:
        (out_dir / "vocab.json").write_text(source.vocab_json, encoding="utf-8")
    return out_dir


def load_exported(directory: str | Path, device: str = "cpu") -> LanguageModel:
    """The language model of a directory written by :func:`export_safetensors` (or
    ``PoetryModel.save``), in eval mode on ``device``.

    Example:
        >>> from rnnkit.tasks.poetry import SHIPPED_MODEL
        >>> scores, (h, c) = load_exported(SHIPPED_MODEL).step(torch.tensor([1, 2]))  # a PoetryModel.save directory
        >>> tuple(scores.shape), tuple(h.shape)
        ((2, 6714), (1, 2, 512))
    """
    from .train import read_run_config

    directory = Path(directory)
    config = read_run_config(directory)
    if not isinstance(config.get("model"), dict) or not (directory / "model.safetensors").is_file():
        raise ValueError(
            f"Expected an exported model directory (config.json with a model config, and model.safetensors). "
            f"Received: {str(directory)!r}."
        )
    model = LanguageModel(**config["model"])
    model.load_state_dict(_read_safetensors(directory / "model.safetensors"))
    return model.to(device).eval()


class OnnxStep(nn.Module):
    """One generation step of a unidirectional :class:`LanguageModel`, written for export: the
    embedding, then per layer the cell's ``input_projection`` and ``step`` on that layer's
    parameters, then the head's scores (:func:`full_log_prob` for an adaptive softmax).  The same
    numbers as ``model.step`` in eval mode.

    Shapes: token (B,) int64; h, c (L, B, H) -> logits (B, V), h_next[, c_next] (L, B, H).

    Example:
        >>> model = LanguageModel(vocab_size=10, embedding_dim=4, hidden_size=8).eval()
        >>> logits, h_next, c_next = OnnxStep(model)(torch.tensor([1, 2]), torch.zeros(2, 2, 8), torch.zeros(2, 2, 8))
        >>> expected, (h, c) = model.step(torch.tensor([1, 2]))
        >>> torch.allclose(logits, expected, atol=1e-6), torch.allclose(h_next, h, atol=1e-6)
        (True, True)
    """

    def __init__(self, model: LanguageModel):
        super().__init__()
        if model.rnn.bidirectional:
            raise ValueError(
                "Expected a unidirectional model: one step forward cannot run a bidirectional layer, which needs "
                "the whole sequence. Received: bidirectional=True."
            )
        if len(model.rnn.cell.state_names) > len(STATE_INPUTS):
            raise ValueError(
                f"Expected a cell with the state h or (h, c). Received: {model.rnn.cell.name!r} with the state "
                f"{model.rnn.cell.state_names}."
            )
        self.model = model

    def forward(self, token: Tensor, h: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        rnn, cell = self.model.rnn, self.model.rnn.cell
        x = self.model.embedding(token)  # (B, E)
        next_state: list[list[Tensor]] = [[] for _ in cell.state_names]
        for layer in range(rnn.num_layers):
            p = Params(rnn.layer_parameters(layer))
            state = (h[layer],) if c is None else (h[layer], c[layer])  # each (B, H)
            new_state, _ = cell.step(cell.input_projection(x, p), state, p)
            for pieces, tensor in zip(next_state, new_state):
                pieces.append(tensor)
            x = new_state[0]  # (B, H): the next layer's input
        head = self.model.head
        scores = full_log_prob(head, x) if isinstance(head, nn.AdaptiveLogSoftmaxWithLoss) else head(x)  # (B, V)
        return (scores, *(torch.stack(pieces) for pieces in next_state))  # (L, B, H) each


def full_log_prob(head: nn.AdaptiveLogSoftmaxWithLoss, hidden: Tensor) -> Tensor:
    """``head.log_prob(hidden)`` written as one concatenation, (B, H) -> (B, V): the shortlist's
    log-probabilities, then each cluster's, ``log p(cluster) + log p(token | cluster)`` (Grave et al.
    2017).  Torch's own writes into slices of an empty (B, V) tensor, which exports as scatters.

    Example:
        >>> head = nn.AdaptiveLogSoftmaxWithLoss(16, 20, [4, 10], div_value=4.0)
        >>> hidden = torch.randn(3, 16)
        >>> torch.allclose(full_log_prob(head, hidden), head.log_prob(hidden), atol=1e-6)
        True
    """
    head_log_prob = torch.log_softmax(head.head(hidden), 1)  # (B, shortlist + clusters)
    pieces = [head_log_prob[:, : head.shortlist_size]]
    for i, tail in enumerate(head.tail):
        cluster = head_log_prob[:, head.shortlist_size + i : head.shortlist_size + i + 1]  # (B, 1)
        pieces.append(cluster + torch.log_softmax(tail(hidden), 1))  # (B, cluster size)
    return torch.cat(pieces, 1)


def export_onnx(
    model: LanguageModel, path: str | Path, opset: int = DEFAULT_OPSET, metadata: dict[str, str] | None = None
) -> Path:
    """Write an ONNX graph of one step of ``model`` (see the module docstring for its inputs and
    outputs; the batch axis is dynamic), with torch's ``torch.export``-based exporter.  The graph's
    metadata holds the model's config, its state names and ``metadata`` (e.g. the vocabulary).
    The model is copied to the CPU and put in eval mode for the export; ``model`` is not changed.

    Example:
        >>> import tempfile, pathlib
        >>> model = LanguageModel(vocab_size=10, embedding_dim=4, hidden_size=8, cell="gru", num_layers=1)
        >>> path = export_onnx(model, pathlib.Path(tempfile.mkdtemp()) / "step.onnx")
        >>> logits, (h,) = run_onnx_step(onnx_session(path), [3, 1, 4])  # any batch size
        >>> logits.shape, h.shape
        ((3, 10), (1, 3, 8))
        >>> check_onnx(model, path) < 1e-4  # the same numbers as model.step
        True
    """
    from . import __version__

    if not isinstance(model, LanguageModel):
        raise ValueError(f"Expected a rnnkit LanguageModel. Received: {type(model).__name__}.")
    _require("onnx", "onnxscript")
    step = OnnxStep(copy.deepcopy(model).cpu().eval()).eval()  # a bidirectional model stops here
    rnn = step.model.rnn
    dtype = rnn.weight_ih_l0.dtype
    B = 2  # the example batch; the exported axis is dynamic
    states = [torch.zeros(rnn.num_layers, B, rnn.hidden_size, dtype=dtype) for _ in rnn.cell.state_names]
    n = len(states)
    batch = torch.export.Dim("batch")
    dynamic_shapes = {"token": {0: batch}, **{name: {1: batch} for name in STATE_INPUTS[:n]}}
    with _quiet_exporter():
        program = torch.onnx.export(
            step,
            (torch.zeros(B, dtype=torch.long), *states),
            input_names=["token", *STATE_INPUTS[:n]],
            output_names=["logits", *STATE_OUTPUTS[:n]],
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
    program.model.metadata_props.update(
        {"rnnkit": __version__, "model_config": json.dumps(model.config), "state": ",".join(STATE_INPUTS[:n])}
    )
    program.model.metadata_props.update(metadata or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(path, external_data=False)
    return path


def _require(*packages: str) -> None:
    """An ImportError naming the extra to install when a package of the ONNX path is missing."""
    import importlib.util

    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"The ONNX export needs {', '.join(missing)}: pip install 'rnnkit[export]'.")


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's known-harmless chatter: torch's own deprecation warnings from inside
    ``torch.export``, the renaming note on the shared ``batch`` axis, and the log lines about
    torchvision's operators (not installed, not used)."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        warnings.filterwarnings("ignore", message=r".*The axis name: batch will not be used.*")
        logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logger.setLevel(level)


def onnx_session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime ``InferenceSession`` of an exported step on the CPU, with ``threads``
    intra-op threads (0: onnxruntime's default).

    Example (see :func:`export_onnx`)::

        session = onnx_session("model.onnx")
        [i.name for i in session.get_inputs()]  # ['token', 'h', 'c'] for an LSTM
    """
    _require("onnxruntime")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx_step(session: Any, token, state=None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One step of an exported model: token (B,) ints -> (logits (B, V), new state).

    ``state`` is what the previous call returned, a tuple ``(h,)`` or ``(h, c)`` of (L, B, H)
    arrays (a single array for ``h`` alone, torch CPU tensors too), or None for zeros.

    Example (``session`` from :func:`onnx_session`; see also :func:`export_onnx`)::

        logits, state = run_onnx_step(session, [5, 2])                 # from zeros
        logits, state = run_onnx_step(session, logits.argmax(1), state)  # and on
    """
    inputs = session.get_inputs()
    state_inputs = inputs[1:]
    token = np.asarray(token, dtype=np.int64).reshape(-1)  # (B,)
    B = token.shape[0]
    if state is None:
        state = tuple(
            np.zeros((i.shape[0], B, i.shape[2]), np.float64 if i.type == "tensor(double)" else np.float32)
            for i in state_inputs
        )
    elif not isinstance(state, (tuple, list)):
        state = (state,)
    if len(state) != len(state_inputs):
        names = ", ".join(i.name for i in state_inputs)
        raise ValueError(f"Expected the state as ({names},). Received {len(state)} tensors.")
    feed = {inputs[0].name: token} | {i.name: np.asarray(s) for i, s in zip(state_inputs, state)}
    logits, *next_state = session.run(None, feed)
    return logits, tuple(next_state)


def check_onnx(model: LanguageModel, path: str | Path, steps: int = 3, batch_size: int = 2, seed: int = 0) -> float:
    """The largest absolute difference between onnxruntime's run of an exported step and
    ``model.step`` in PyTorch, over ``steps`` steps of random tokens (each feeding its state back),
    in the logits and every state tensor.

    Example: see :func:`export_onnx`.
    """
    model = copy.deepcopy(model).cpu().eval()
    session = onnx_session(path)
    generator = torch.Generator().manual_seed(seed)
    torch_state, onnx_state, worst = None, None, 0.0
    for _ in range(steps):
        token = torch.randint(0, model.vocab_size, (batch_size,), generator=generator)
        logits, torch_state = model.step(token, torch_state)
        onnx_logits, onnx_state = run_onnx_step(session, token.numpy(), onnx_state)
        expected = (torch_state,) if isinstance(torch_state, Tensor) else torch_state
        for ours, theirs in zip((onnx_logits, *onnx_state), (logits, *expected)):
            worst = max(worst, float(np.abs(ours - theirs.numpy()).max()))
    return worst
