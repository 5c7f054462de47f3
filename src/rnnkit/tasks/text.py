"""Character language models on any UTF-8 text: train, report bits per character beside a
Kneser-Ney baseline, generate.

    run = rnnkit.tasks.text.train("book.txt", hidden_size=256, epochs=5)
    rnnkit.tasks.text.generate(run.run_dir, prime="The ", length=200)

The text is encoded once into the run directory (``corpus/``: a memory-mapped id array, so
memory does not grow with the corpus), split by position 90/5/5, and trained as
``batch_size`` parallel streams cut into chunks of ``chunk_length`` characters, the state
carried between chunks (truncated BPTT).

With ``devices`` > 1 (or ``num_nodes`` > 1) every process runs ``train``: the first writes the
run directory; each other one encodes the text into a temporary directory of its own (or reads
the run's ``corpus/`` when resuming), trains on its share of the streams and returns an empty
report.  ``batch_size`` is the global number of streams, split between the processes.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.corpus import TokenCorpus, encode_corpus
from ..data.vocab import Vocabulary
from ..decoding import FreeText, SamplingOptions, sample
from ..language_model import LanguageModel

BASELINE_MAX_CHARS = 2_000_000  # the pure-Python n-gram baseline is fit on at most this many training characters
EVAL_MAX_CHARS = 2_000_000  # validation and test score the first this many characters of their split (big corpora)


@dataclass
class TextRun:
    run_dir: Path
    model: LanguageModel
    vocab: Vocabulary
    report: dict  # empty in the other processes of a data-parallel run (only the first evaluates)


@torch.no_grad()
def stream_bits_per_char(model: LanguageModel, tokens: np.ndarray, chunk_length: int = 256) -> float:
    """Bits per character of ``model`` over one stream of ids, state carried from chunk to chunk."""
    from ..data.batches import StreamChunks

    model.eval()
    chunks = StreamChunks(tokens, 1, chunk_length)
    total, count, state = 0.0, 0, None
    for i in range(len(chunks)):
        out = model.loss(chunks[i], state)
        total += out.loss.item() * out.count
        count += out.count
        state = out.state
    return total / count / math.log(2)


def _check_divisible(batch_size: int, world_size: int) -> None:
    if batch_size % world_size:
        raise ValueError(
            f"Expected a batch size divisible by the number of processes ({world_size}): it is the global "
            f"number of streams, split between them. Received: batch_size={batch_size}"
        )


def train(
    data: str | Path,
    *,
    cell: str = "lstm",
    num_layers: int = 2,
    hidden_size: int = 512,
    embedding_dim: int = 128,
    dropout: float = 0.1,
    batch_size: int = 32,
    chunk_length: int = 128,
    epochs: int = 10,
    learning_rate: float = 2e-3,
    device: str = "auto",
    devices: int = 1,
    strategy: str = "auto",
    num_nodes: int = 1,
    seed: int = 0,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    baselines: bool = True,
    progress: bool = True,
) -> TextRun:
    """Train a character language model on a UTF-8 file or directory; see the module docstring.

    ``report.json`` in the run directory holds validation and test bits per character and,
    on the same test split, the unigram and Kneser-Ney 3- and 5-gram baselines (fit on the
    last ``BASELINE_MAX_CHARS`` training characters when the training split is longer).  On a big
    corpus validation (every epoch) and test score the first ``EVAL_MAX_CHARS`` characters of
    their split (``report["scored_characters"]``), so their cost does not grow with the corpus.
    ``devices``, ``strategy`` and ``num_nodes``: data-parallel training (``TrainConfig``); they
    may change when resuming.
    """
    from ..baselines.ngram import evaluate
    from ..data.batches import stream_loader
    from ..train import Splits, TrainConfig, fit, load_weights, new_run_dir, read_run_config
    from ..train.fit import process_rank

    parallel = dict(devices=devices, strategy=strategy, num_nodes=num_nodes)
    private = None  # the corpus of a process other than the first, removed at the end
    if resume is not None:
        saved = read_run_config(resume)
        run_dir = Path(resume)
        config = TrainConfig.from_dict({**saved["train"], **parallel})
        config.progress = progress
        batch_size, chunk_length = saved["batch_size"], saved["chunk_length"]
        _check_divisible(batch_size, config.world_size)
        corpus = TokenCorpus.open(run_dir / "corpus")
        model_config = saved["model"]
    else:
        config = TrainConfig(task="text", epochs=epochs, learning_rate=learning_rate, device=device, seed=seed,
                             progress=progress, **parallel)  # fmt: skip
        _check_divisible(batch_size, config.world_size)
        if process_rank() != 0:
            private = Path(tempfile.mkdtemp(prefix=f"rnnkit-rank{process_rank()}-"))
            run_dir = None
        else:
            run_dir = Path(run_dir) if run_dir else new_run_dir("text", config.runs_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
        home = private or run_dir
        try:
            corpus = encode_corpus(data, home / "corpus")
        except ValueError:
            shutil.rmtree(home / "corpus", ignore_errors=True)
            if not any(home.iterdir()):
                home.rmdir()  # leave no empty run behind for a corpus that could not be read
            raise
        if private is None:
            (run_dir / "vocab.json").write_text(corpus.vocab.to_json(), encoding="utf-8")
        model_config = dict(vocab_size=len(corpus.vocab), embedding_dim=embedding_dim, hidden_size=hidden_size,
                            num_layers=num_layers, cell=cell, dropout=dropout)  # fmt: skip
    train_ids, val_ids, test_ids = corpus.split()
    if len(val_ids) < 2 or len(test_ids) < 2:
        raise ValueError(f"{len(corpus)} characters are too few to split 90/5/5; give at least 40.")
    batch_size = max(1, min(batch_size, (len(train_ids) - 1) // 2))
    batch_size -= batch_size % config.world_size  # still a multiple of the processes when the text is short
    if batch_size < 1:
        raise ValueError(f"{len(train_ids)} training characters are too few for {config.world_size} processes.")
    torch.manual_seed(config.seed)
    model = LanguageModel(**model_config)
    splits = Splits(
        stream_loader(train_ids, batch_size, chunk_length),
        stream_loader(val_ids[:EVAL_MAX_CHARS], 1, max(chunk_length, 256)),
        stateful=True,
        unit="chars",
    )
    vocab = corpus.vocab
    meta = {"batch_size": batch_size, "chunk_length": chunk_length, "data": str(data), "characters": len(corpus)}

    def samples(m):
        return generate_with(m, vocab, prime=vocab.decode(train_ids[:1]), length=200, seed=0)

    try:
        result = fit(model, splits, config, run_dir=run_dir, resume=resume, meta=meta, samples=samples)
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
    if result.global_rank != 0:
        return TextRun(result.run_dir, model.eval(), vocab, {})
    load_weights(model, run_dir, "best")
    report = {
        "run_dir": str(run_dir),
        "val_bits_per_char": stream_bits_per_char(model, val_ids[:EVAL_MAX_CHARS]),
        "test_bits_per_char": stream_bits_per_char(model, test_ids[:EVAL_MAX_CHARS]),
        "best_epoch": result.best_epoch, "epochs": result.epochs, "stop_reason": result.stop_reason,
        "split": "by position: first 90% train, next 5% validation, last 5% test",
        "characters": {"train": len(train_ids), "val": len(val_ids), "test": len(test_ids)},
        "scored_characters": {"val": min(len(val_ids), EVAL_MAX_CHARS), "test": min(len(test_ids), EVAL_MAX_CHARS)},
    }  # fmt: skip
    if baselines:
        train_text = vocab.decode(train_ids[-BASELINE_MAX_CHARS:])
        test_text = vocab.decode(test_ids[:EVAL_MAX_CHARS])
        report["baselines_test_bits_per_char"] = evaluate(train_text.replace("\ufffd", "\x00"), test_text)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return TextRun(run_dir, model.eval(), vocab, report)


def load_run(run_dir: str | Path, device: str = "cpu") -> TextRun:
    """A trained text run's best model and vocabulary (or those of a directory written by
    ``rnnkit export --format safetensors``)."""
    from ..train import load_weights, read_run_config

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if not (run_dir / "vocab.json").is_file():
        raise ValueError(f"{str(run_dir)!r} is not a text run (no vocab.json).")
    vocab = Vocabulary.from_json((run_dir / "vocab.json").read_text(encoding="utf-8"))
    if not (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "model.safetensors").is_file():
        from ..export import load_exported  # an exported model directory: the weights alone

        model = load_exported(run_dir, device)
    else:
        model = load_weights(LanguageModel(**config["model"]), run_dir, "best").to(device).eval()
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.is_file() else config.get("report", {})
    return TextRun(run_dir, model, vocab, report)


def generate_with(
    model: LanguageModel,
    vocab: Vocabulary,
    prime: str = "",
    length: int = 200,
    num: int = 1,
    temperature: float = 0.8,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    seed: int | None = None,
) -> str | list[str]:
    """Continue ``prime`` with ``length`` characters (one string, or a list when ``num`` > 1).

    Characters of the prime that the model never saw are a ``ValueError`` naming them.
    """
    unknown = sorted({c for c in prime if c not in vocab})
    if unknown:
        raise ValueError(f"The prime has characters the model never saw: {''.join(unknown)!r}.")
    prime = prime or ("\n" if "\n" in vocab else vocab.itos[1])
    options = SamplingOptions(temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    form = FreeText(vocab, length)
    rows = sample(model, vocab.encode(prime), form, num=num, options=options, generator=generator)
    texts = [form.render(vocab, row) for row in rows]
    return texts[0] if num == 1 else texts


def generate(run_dir: str | Path, prime: str = "", length: int = 200, **options) -> str | list[str]:
    """Continue ``prime`` with a trained run's best model; options as ``generate_with``.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "t.txt").write_text("abcabcabd " * 200, encoding="utf-8")
        >>> run = train(d / "t.txt", hidden_size=16, embedding_dim=8, num_layers=1, epochs=1, baselines=False,
        ...             progress=False, run_dir=d / "run")
        >>> len(generate(d / "run", prime="abc", length=30, seed=0))
        30
    """
    run = load_run(run_dir)
    return generate_with(run.model, run.vocab, prime, length, **options)
