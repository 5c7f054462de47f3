"""The poetry generator's public API (the work is in ``rnnkit.tasks.poetry``).

>>> import rnnkit.poetry
>>> len(rnnkit.poetry.generate(form=5, lines=4, num=1, seed=1)[0].splitlines())
4
"""

from .tasks.poetry import PRESETS, PoetryModel, bits_per_char, export_run, generate, load_model, split_poems, train

__all__ = ["PRESETS", "PoetryModel", "bits_per_char", "export_run", "generate", "load_model", "split_poems", "train"]
