"""Baselines printed beside every model score: n-gram language models (and, as tasks land,
naive forecasts and majority classes)."""
