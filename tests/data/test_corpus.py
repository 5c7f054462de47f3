"""The on-disk token array: round trip, splits, and clear errors for bad text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.corpus import TokenCorpus, encode_corpus, read_chunks
from rnnkit.data.vocab import Vocabulary


def test_directory_round_trips_through_the_token_array(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("春眠不觉晓\n", encoding="utf-8")
    (tmp_path / "src" / "b.txt").write_text("处处闻啼鸟\n" * 3, encoding="utf-8")
    corpus = encode_corpus(tmp_path / "src", tmp_path / "enc")
    assert corpus.vocab.decode(corpus.tokens) == "春眠不觉晓\n" + "处处闻啼鸟\n" * 3
    assert corpus.tokens.dtype == np.uint16 and corpus.vocab.itos[1] == "处"  # most frequent first (6 times)
    reopened = TokenCorpus.open(tmp_path / "enc")
    assert np.array_equal(reopened.tokens, corpus.tokens)
    train, val, test = reopened.split((0.5, 0.25, 0.25))
    assert len(train) + len(val) + len(test) == len(corpus) == 24
    assert np.array_equal(np.concatenate([train, val, test]), corpus.tokens)


def test_given_vocabulary_maps_unseen_characters_to_unknown(tmp_path):
    (tmp_path / "t.txt").write_text("abcz", encoding="utf-8")
    corpus = encode_corpus(tmp_path / "t.txt", tmp_path / "enc", vocab=Vocabulary(list("abc")))
    assert corpus.tokens.tolist() == [1, 2, 3, 0]


@settings(max_examples=30, deadline=None)
@given(text=st.text(min_size=1, max_size=40), chunk=st.integers(1, 7))
def test_chunked_decoding_equals_whole_decoding(tmp_path_factory, text, chunk):
    path = tmp_path_factory.mktemp("c") / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    assert "".join(read_chunks(path, chunk_bytes=chunk)) == text.removeprefix("\ufeff")


@pytest.mark.parametrize("chunk", [2, 3, 1 << 20])
def test_non_utf8_names_the_file_and_byte_offset(tmp_path, chunk):
    path = tmp_path / "latin1.txt"
    path.write_bytes("春天".encode() + b"ab\xe9cd")  # 6 bytes of hanzi, 'ab', then a Latin-1 é at offset 8
    with pytest.raises(ValueError, match=r"latin1.txt' is not UTF-8 text: invalid byte at offset 8"):
        list(read_chunks(path, chunk_bytes=chunk))


def test_empty_and_missing_inputs_get_clear_errors(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="holds no text"):
        encode_corpus(tmp_path / "empty.txt", tmp_path / "enc")
    with pytest.raises(ValueError, match="No such file or directory"):
        encode_corpus(tmp_path / "nope.txt", tmp_path / "enc")
    (tmp_path / "dir").mkdir()
    with pytest.raises(ValueError, match="No files under"):
        encode_corpus(tmp_path / "dir", tmp_path / "enc")
    with pytest.raises(ValueError, match="tokens.bin is missing"):
        TokenCorpus.open(tmp_path / "dir")
    with pytest.raises(ValueError, match="three fractions"):
        encode_corpus(_write(tmp_path / "ok.txt", "abc"), tmp_path / "enc").split((0.5, 0.5))


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path
