"""Data: vocabularies, corpora and the samples that ship with rnnkit."""
