"""Poetry corpora: the shipped Tang poems, the three input formats, normalisation, clear errors."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data.poetry import Poem, filter_form, load_poems, load_tang, normalise, poem_form, to_simplified

JING_YE_SI = {
    "title": "靜夜思",
    "author": "李白",
    "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"],
}


@pytest.fixture(scope="module")
def tang():
    return load_tang()


def test_shipped_tang_corpus_is_regular_simplified_and_deduplicated(tang):
    assert len(tang) == 38627
    assert {poem_form(p) for p in tang} == {(5, 4), (5, 8), (7, 4), (7, 8)}
    cjk = "[\u3400-\u9fff\uf900-\ufaff\U00020000-\U000323af]"
    couplets = [f"(?:{cjk}{{{n}}}，{cjk}{{{n}}}。){{{k}}}" for n in (5, 7) for k in (2, 4)]
    regular = re.compile("|".join(couplets))  # line，line。 twice or four times, 5 or 7 characters each
    assert all(regular.fullmatch(p.text()) for p in tang)
    bodies = ["".join(p.lines) for p in tang]
    assert len(set(bodies)) == len(bodies)
    text = "".join(bodies)
    assert not set("風雲無與東馬為門") & set(text)  # traditional forms are gone
    assert set("风云无与东马为门") <= set(text)  # their simplified forms are there
    assert "□" not in text and all(p.title and p.author for p in tang)
    assert tang[0] == Poem(
        [
            "秦川雄帝宅",
            "函谷壮皇居",
            "绮殿千寻起",
            "离宫百雉余",
            "连甍遥接汉",
            "飞观迥凌虚",
            "云日隐层阙",
            "风烟出绮疎",
        ],
        "帝京篇十首 一",
        "太宗皇帝",
    )


def test_chinese_poetry_json_directory_and_text_files_load(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "poet.tang.0.json").write_text(json.dumps([JING_YE_SI], ensure_ascii=False), "utf-8")
    (tmp_path / "d" / "more.txt").write_text("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。\n\n", encoding="utf-8")
    (tmp_path / "d" / "authors.tang.json").write_text('[{"name": "李白", "desc": "..."}]', encoding="utf-8")
    (tmp_path / "d" / "ignored.md").write_text("# not poems", encoding="utf-8")
    poems = load_poems(tmp_path / "d")  # recursive, sorted; the authors file and the .md are skipped
    assert [(p.title, p.author) for p in poems] == [("", ""), ("靜夜思", "李白")]
    assert poems[0].lines == ["春眠不觉晓", "处处闻啼鸟", "夜来风雨声", "花落知多少"]
    assert poems[1].lines == ["床前明月光", "疑是地上霜", "舉頭望明月", "低頭思故鄉"]
    simplified = load_poems(tmp_path / "d" / "sub" / "poet.tang.0.json", simplified=True)[0]
    assert simplified == Poem(["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡"], "静夜思", "李白")


def test_paragraph_breaks_are_line_breaks_and_notes_may_span_paragraphs(tmp_path):
    record = {
        "title": "補錄（題擬）",
        "author": "佚名",
        "paragraphs": ["住在綠池邊，朝朝學採蓮", "水深偏責就，（一作「就」，\n見某卷。", "）蓮盡更移舡"],
    }
    (tmp_path / "p.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    [poem] = load_poems(tmp_path / "p.json")
    assert poem == Poem(["住在綠池邊", "朝朝學採蓮", "水深偏責就", "蓮盡更移舡"], "補錄", "佚名")


def test_normalise_strips_notes_and_symbols_and_keeps_supplied_and_missing_characters():
    assert normalise("秦川雄帝宅（一作京），函谷壮皇居。【注】★ab") == "秦川雄帝宅，函谷壮皇居。"
    assert normalise("重開千佛剎[一二]，〔注（內）〕〖1〗「旁出」四天宮。") == "重開千佛剎，旁出四天宮。"
    assert normalise("[爽]節在重九，［接梨過半箸］；童子解吟《長恨曲》") == "爽節在重九，接梨過半箸；童子解吟長恨曲"
    assert normalise("萌芽牙{丿爲丶}矩修，●●啼深竹，⿰亻丸香坐，\ue829身思") == "萌芽牙□矩修，□□啼深竹，□香坐，□身思"
    assert normalise("雞人罷唱曉瓏璁𤧚") == "雞人罷唱曉瓏璁𤧚"  # ideographs beyond the basic plane are characters
    assert normalise("風雲無（一作無）", simplified=True) == to_simplified("風雲無") == "风云无"


def test_poem_form_and_filter_form():
    poems = [
        Poem(["一二三四五"] * 4),
        Poem(["一二三四五六七"] * 8),
        Poem(["一二三四五", "一二三四五六七"] * 2),  # mixed lengths
        Poem(["一二三四五六"] * 4),  # six characters
        Poem(["一二三四五"] * 6),  # six lines
        Poem(["一二三四五"] * 3 + ["一二□四五"]),  # a character missing
    ]
    assert [poem_form(p) for p in poems] == [(5, 4), (7, 8), None, (6, 4), (5, 6), None]
    assert [poem_form(p) for p in filter_form(poems)] == [(5, 4), (7, 8)]
    assert filter_form(poems, chars=(5,), lines=(4,)) == poems[:1]
    assert filter_form(poems, chars=(5, 6), lines=(4, 6)) == [poems[0], poems[3], poems[4]]


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("empty.txt", b"", "empty.txt' is empty"),
        ("blank.json", b" \n\t\n", "blank.json' is empty"),
        ("latin1.txt", "春眠".encode() + b"\xe9", r"latin1.txt' is not UTF-8 text: invalid byte at offset 6"),
        ("bad.json", b'[{"paragraphs": ', r"bad.json' is not valid JSON"),
        ("shape.json", b'[{"title": "x"}]', r"shape.json': expected a list of poems"),
        ("symbols.txt", b"abc\n123\n", "No poems found in .*symbols.txt"),
    ],
)
def test_bad_files_get_errors_naming_them(tmp_path, name, content, pattern):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=pattern):
        load_poems(tmp_path / name)


def test_bad_files_in_a_directory_are_named_too(tmp_path):
    (tmp_path / "ok.txt").write_text("春眠不觉晓，处处闻啼鸟。\n", encoding="utf-8")
    (tmp_path / "z.json").write_bytes(b"[{]")
    with pytest.raises(ValueError, match=r"z.json' is not valid JSON"):
        load_poems(tmp_path)


def test_missing_path_and_directories_without_poems_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="No such file or directory"):
        load_poems(tmp_path / "nope.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No files under"):
        load_poems(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.md").write_text("床前明月光", encoding="utf-8")
    with pytest.raises(ValueError, match="No .json or .txt files under"):
        load_poems(tmp_path / "other")
    (tmp_path / "other" / "authors.json").write_text('[{"name": "李白"}]', encoding="utf-8")
    with pytest.raises(ValueError, match="No poems found in .*other"):
        load_poems(tmp_path / "other")


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
        assert poems and all(p.lines and all(p.lines) for p in poems)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet="春眠不觉晓，。？（）[]［］{}「」《》〖〗□●一二 \n\ue829⿰a1", max_size=60))
def test_random_poem_like_text_loads_or_fails_cleanly(tmp_path, text):
    path = tmp_path / "random.txt"
    path.write_text(text, encoding="utf-8")
    try:
        poems = load_poems(path)
    except ValueError as error:
        assert "random.txt" in str(error)
    else:
        assert all(re.fullmatch(r"[春眠不觉晓□一二]+", line) for p in poems for line in p.lines)
