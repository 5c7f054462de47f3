"""Poetry corpora: the shipped Tang poems, the three input formats, normalisation, clear errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data.poetry import Poem, filter_form, load_poems, load_tang, normalise, poem_form, to_simplified


@pytest.fixture(scope="module")
def tang():
    return load_tang()


def test_shipped_tang_corpus_is_regular_simplified_and_deduplicated(tang):
    assert len(tang) == 36788
    assert all(poem_form(p) in {(5, 4), (5, 8), (7, 4), (7, 8)} for p in tang)
    bodies = ["".join(p.lines) for p in tang]
    assert len(set(bodies)) == len(bodies)
    text = "".join(bodies)
    assert not set("風雲無與東馬") & set(text)  # traditional forms are gone
    assert set("风云无与东马") <= set(text)  # their simplified forms are there
    assert all(p.title and p.author for p in tang[:100])
    assert tang[0].text().endswith("。") and tang[0].text().count("，") == len(tang[0].lines) // 2


def test_chinese_poetry_json_directory_and_text_files_load(tmp_path):
    record = {
        "title": "靜夜思",
        "author": "李白",
        "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"],
    }
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "poet.tang.0.json").write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")
    (tmp_path / "d" / "more.txt").write_text("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\n\n", encoding="utf-8")
    (tmp_path / "d" / "ignored.md").write_text("# not poems", encoding="utf-8")
    poems = load_poems(tmp_path / "d")
    assert [p.title for p in poems] == ["", "靜夜思"]  # sorted file order: more.txt, poet.tang.0.json
    assert poems[1].lines == ["床前明月光", "疑是地上霜", "舉頭望明月", "低頭思故鄉"]
    simplified = load_poems(tmp_path / "d" / "poet.tang.0.json", simplified=True)[0]
    assert simplified.lines[2:] == ["举头望明月", "低头思故乡"] and simplified.title == "静夜思"


def test_normalise_strips_bracketed_notes_and_odd_symbols():
    assert normalise("秦川雄帝宅（一作京），函谷壮皇居。【注】★ab") == "秦川雄帝宅，函谷壮皇居。"
    assert to_simplified("風雲") == "风云"


def test_filter_form_keeps_only_regular_poems():
    poems = [
        Poem(["一二三四五"] * 4),
        Poem(["一二三四五六七"] * 8),
        Poem(["一二三四五", "一二三四五六七"] * 2),  # mixed lengths
        Poem(["一二三四五六"] * 4),  # six characters
        Poem(["一二三四五"] * 6),  # six lines
    ]
    assert [poem_form(p) for p in filter_form(poems)] == [(5, 4), (7, 8)]
    assert filter_form(poems, chars=(5,), lines=(4,)) == poems[:1]


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("empty.txt", b"", "is empty"),
        ("latin1.txt", "春眠".encode() + b"\xe9", r"not UTF-8 text: invalid byte at offset 6"),
        ("bad.json", b'[{"paragraphs": ', r"bad.json' is not valid JSON"),
        ("shape.json", b'[{"title": "x"}]', r"'paragraphs' list"),
        ("symbols.txt", b"abc\n123\n", "No poems found"),
    ],
)
def test_bad_files_get_errors_naming_them(tmp_path, name, content, pattern):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=pattern):
        load_poems(tmp_path / name)


def test_missing_path_and_empty_directory_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="No such file or directory"):
        load_poems(tmp_path / "nope.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No files under"):
        load_poems(tmp_path / "empty")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".txt", ".json"]))
def test_random_bytes_give_poems_or_a_clear_error(tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    try:
        poems = load_poems(path)
    except ValueError as error:
        assert "random" in str(error)  # the message names the file
    else:
        assert poems and all(p.lines for p in poems)
