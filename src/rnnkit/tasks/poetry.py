"""The Chinese poetry generator: train a character language model on regular Tang poems,
then write quatrains and regulated verse, free, from a first line, or acrostic (藏头诗).

    import rnnkit.poetry
    rnnkit.poetry.generate(acrostic="春花秋月", form=7, num=3, seed=0)   # the shipped model
    rnnkit.poetry.train("default", export="my_model/")                 # rnnkit poetry train --preset default

Each poem is one training sequence, ``"\\n" + poem + "\\n"``, batched whole with its length;
the vocabulary (most frequent first) comes from the training split.  The split is by poem,
90/5/5, after removing exact duplicates, shuffled with seed 0: the same split the n-gram
baselines are measured on.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.poetry import Poem
from ..data.vocab import Vocabulary
from ..decoding import POEM_SEPARATOR, PoemForm, SamplingOptions, beam_search, sample
from ..language_model import LanguageModel

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "data" / "poetry" / "model"
SPLIT = (0.9, 0.05, 0.05)

PRESETS: dict[str, dict] = {
    # 1-layer LSTM-512 with an adaptive softmax: 4.2 M parameters (17 MB float32), about 0.55 s a
    # batch of 64 poems on 2 CPU cores; see README for its held-out bits per character.
    "default": {
        "model": dict(embedding_dim=256, hidden_size=512, num_layers=1, cell="lstm", dropout=0.1, output="adaptive"),
        "train": dict(epochs=8, learning_rate=2e-3, early_stopping=2),
        "batch_size": 64,
    },
    # seconds on a laptop: for tests and trying the pipeline
    "tiny": {
        "model": dict(embedding_dim=16, hidden_size=32, num_layers=1, cell="lstm", output="adaptive"),
        "train": dict(epochs=2, learning_rate=5e-3),
        "batch_size": 16,
    },
}


def split_poems(poems: list[Poem], seed: int = 0) -> tuple[list[Poem], list[Poem], list[Poem]]:
    """Train/validation/test poems (90/5/5), exact duplicates removed first so none leaks across.

    Example:
        >>> poems = [Poem([f"{i}"]) for i in range(100)] + [Poem(["0"])]
        >>> [len(part) for part in split_poems(poems)]
        [90, 5, 5]
    """
    unique = list({poem.text(): poem for poem in poems}.values())
    random.Random(seed).shuffle(unique)
    a = round(len(unique) * SPLIT[0])
    b = round(len(unique) * (SPLIT[0] + SPLIT[1]))
    return unique[:a], unique[a:b], unique[b:]


def poem_sequence(poem: Poem) -> str:
    """The training text of one poem: separator, lines with their punctuation, separator."""
    return POEM_SEPARATOR + poem.text() + POEM_SEPARATOR


def baseline_text(poems: list[Poem]) -> str:
    """The poems as one text for the n-gram baselines: each poem and its newline (counted)."""
    return "".join(poem.text() + POEM_SEPARATOR for poem in poems)


@dataclass
class PoetryModel:
    """A trained poetry language model with its vocabulary."""

    model: LanguageModel
    vocab: Vocabulary
    report: dict

    def save(self, directory: str | Path) -> Path:
        """Write model.safetensors, config.json and vocab.json (what ``load_model`` reads)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(directory / "model.safetensors"))
        config = {"task": "poetry", "model": self.model.config, "report": self.report}
        (directory / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
        (directory / "vocab.json").write_text(self.vocab.to_json(), encoding="utf-8")
        return directory


def load_model(path: str | Path | None = None, device: str = "cpu") -> PoetryModel:
    """A poetry model from a directory with model.safetensors, config.json and vocab.json (an
    exported model or a run directory); the model shipped with rnnkit by default.

    Example:
        >>> m = load_model()
        >>> m.model.vocab_size == len(m.vocab)
        True
    """
    from safetensors.torch import load_file

    directory = Path(path) if path is not None else SHIPPED_MODEL
    missing = [n for n in ("model.safetensors", "config.json", "vocab.json") if not (directory / n).is_file()]
    if missing:
        raise ValueError(f"{str(directory)!r} is not a poetry model: {', '.join(missing)} missing.")
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    vocab = Vocabulary.from_json((directory / "vocab.json").read_text(encoding="utf-8"))
    model = LanguageModel(**config["model"])
    weights = directory / "model.safetensors"
    try:
        state = load_file(str(weights), device=device)
    except Exception as error:  # safetensors' SafetensorError: "Error while deserializing header: ..."
        from ..train.checkpoints import CheckpointError

        raise CheckpointError(f"{weights} is not a readable weights file (truncated or corrupt: {error}).") from None
    model.load_state_dict(state)
    return PoetryModel(model.to(device).eval(), vocab, config.get("report", {}))


def generate(
    model: PoetryModel | str | Path | None = None,
    *,
    acrostic: str | None = None,
    form: int = 5,
    lines: int = 4,
    first_line: str | None = None,
    num: int = 1,
    temperature: float = 0.8,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    beam: int = 0,
    rhyme: bool = False,
    seed: int | None = None,
) -> list[str]:
    """Write ``num`` poems of ``lines`` lines of ``form`` (5 or 7) characters.

    ``acrostic="春花秋月"``: line k starts with the k-th character, and the number of lines is
    the number of heads.  ``first_line``: the poem starts with it.  ``beam`` > 0: beam search
    (one most likely poem; ``num`` must be 1).  ``rhyme``: lines 2, 4, 6, 8 end in one rhyme group
    of modern Mandarin (中华新韵; see ``rnnkit.decoding.rhyme_group``).  Every poem is
    well-formed by construction.

    Example:
        >>> poems = generate(acrostic="春花秋月", form=7, num=2, seed=0)
        >>> [[line[0] for line in p.splitlines()] for p in poems]
        [['春', '花', '秋', '月'], ['春', '花', '秋', '月']]
    """
    if form not in (5, 7):
        raise ValueError(f"Expected form to be one of [5, 7]. Received: form={form!r}")
    if num < 1:
        raise ValueError(f"Expected num >= 1. Received: num={num}")
    if beam and num != 1:
        raise ValueError(f"Beam search writes the one most likely poem: use num=1. Received: num={num}, beam={beam}")
    poetry = model if isinstance(model, PoetryModel) else load_model(model)
    if acrostic is not None and not acrostic:
        raise ValueError("Expected at least one acrostic head character. Received: acrostic=''")
    constraint = PoemForm(poetry.vocab, chars_per_line=form, num_lines=lines, heads=acrostic, first_line=first_line,
                          rhyme=rhyme)  # fmt: skip
    prefix = PoemForm.start(poetry.vocab)
    if beam:
        ids, _ = beam_search(poetry.model, prefix, constraint, beam_size=beam)
        rows = [ids]
    else:
        options = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p,
                                  repetition_penalty=repetition_penalty)  # fmt: skip
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        rows = list(sample(poetry.model, prefix, constraint, num=num, options=options, generator=generator))
    return [constraint.render(poetry.vocab, row) for row in rows]


@torch.no_grad()
def bits_per_char(model: LanguageModel, vocab: Vocabulary, poems: list[Poem], batch_size: int = 256) -> float:
    """Held-out bits per character of ``model`` on ``poems`` (every character and the closing newline)."""
    from ..data.batches import pad_sequences

    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(poems), batch_size):
        batch = pad_sequences([vocab.encode(poem_sequence(p)) for p in poems[i : i + batch_size]])
        out = model.loss(batch)
        total += out.loss.item() * out.count
        count += out.count
    return total / count / math.log(2)


def train(
    preset: str = "default",
    poems: list[Poem] | None = None,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    max_poems: int | None = None,
    device: str = "auto",
    seed: int = 0,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    export: str | Path | None = None,
    baselines: bool = True,
    progress: bool = True,
) -> PoetryModel:
    """Train a poetry model (on the shipped Tang poems unless ``poems`` is given).

    Writes a run directory (``runs/poetry-<timestamp>``, see ``rnnkit.train.fit``) with
    ``vocab.json`` and ``report.json``: validation and test bits per character beside the
    unigram and Kneser-Ney 3- and 5-gram baselines on the same split.  ``export``: also save
    the best model there (what ``load_model`` reads).  ``resume``: continue a run directory.
    """
    from ..data.batches import sequence_loader
    from ..data.poetry import load_tang
    from ..train import Splits, TrainConfig, fit, load_weights, read_run_config

    if preset not in PRESETS:
        raise ValueError(f"Expected preset to be one of {list(PRESETS)}. Received: preset={preset!r}")
    settings = PRESETS[preset]
    if resume is not None:
        saved = read_run_config(resume)
        preset, seed, max_poems = saved["preset"], saved["train"]["seed"], saved.get("max_poems")
        batch_size, config = saved["batch_size"], TrainConfig.from_dict(saved["train"])
        config.progress = progress
        model_config = saved["model"]
    else:
        batch_size = batch_size or settings["batch_size"]
        train_settings = {**settings["train"], **({"epochs": epochs} if epochs else {})}
        config = TrainConfig(task="poetry", device=device, seed=seed, progress=progress, **train_settings)
        model_config = None
    poems = poems if poems is not None else load_tang()
    if max_poems:
        poems = poems[:max_poems]
    train_poems, val_poems, test_poems = split_poems(poems, seed=0)
    if not val_poems or not test_poems:
        raise ValueError(f"{len(poems)} poems are too few to split 90/5/5; give at least 40.")
    vocab = Vocabulary.from_text(baseline_text(train_poems) + POEM_SEPARATOR)
    if model_config is None:
        model_config = dict(vocab_size=len(vocab), **settings["model"])
    torch.manual_seed(seed)
    model = LanguageModel(**model_config)
    data = Splits(
        train=sequence_loader([vocab.encode(poem_sequence(p)) for p in train_poems], batch_size, seed=seed),
        val=sequence_loader([vocab.encode(poem_sequence(p)) for p in val_poems], 256, shuffle=False),
        unit="chars",
    )
    meta = {"preset": preset, "batch_size": batch_size, "max_poems": max_poems, "poems": len(poems)}

    def samples(m):
        return "\n\n".join(generate(PoetryModel(m, vocab, {}), form=f, num=1, seed=0)[0] for f in (5, 7))

    if resume is None:
        from ..train.checkpoints import new_run_dir

        run_dir = Path(run_dir) if run_dir else new_run_dir("poetry", config.runs_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "vocab.json").write_text(vocab.to_json(), encoding="utf-8")
    result = fit(model, data, config, run_dir=run_dir, resume=resume, meta=meta, samples=samples)
    load_weights(model, result.run_dir, "best")
    report = {
        "val_bits_per_char": bits_per_char(model, vocab, val_poems),
        "test_bits_per_char": bits_per_char(model, vocab, test_poems),
        "best_epoch": result.best_epoch, "epochs": result.epochs, "stop_reason": result.stop_reason,
        "run_dir": str(result.run_dir),
        "split": "90/5/5 by poem, duplicates removed, seed 0; newline counted",
        "poems": {"train": len(train_poems), "val": len(val_poems), "test": len(test_poems)},
    }  # fmt: skip
    if baselines:
        from ..baselines.ngram import evaluate

        report["baselines_test_bits_per_char"] = evaluate(baseline_text(train_poems), baseline_text(test_poems))
    (result.run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    poetry = PoetryModel(model.eval(), vocab, report)
    if export is not None:
        poetry.save(export)
    return poetry


def export_run(run_dir: str | Path, directory: str | Path) -> Path:
    """Save a run's best model (with its vocabulary and report) as a model directory."""
    from ..train import load_weights, read_run_config

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    vocab = Vocabulary.from_json((run_dir / "vocab.json").read_text(encoding="utf-8"))
    model = load_weights(LanguageModel(**config["model"]), run_dir, "best")
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
    if Path(directory).exists() and not Path(directory).is_dir():
        raise ValueError(f"{str(directory)!r} exists and is not a directory.")
    shutil.rmtree(directory, ignore_errors=True)
    return PoetryModel(model.eval(), vocab, report).save(directory)
