"""The captioning task: generated shapes, the Show-and-Tell decoder, decoding, errors, CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rnnkit.commands.caption import app
from rnnkit.tasks import caption as C

RGB = {name: np.asarray(rgb) for name, rgb in C.COLOURS.items()}


def nearest_colour(pixel: np.ndarray) -> str:
    return min(RGB, key=lambda name: float(((RGB[name] - pixel) ** 2).sum()))


def tiny_model(encoder: str = "features", vocab_size: int = 12, **options) -> C.Captioner:
    torch.manual_seed(0)
    sizes = dict(feature_size=5, embedding_dim=8, hidden_size=16) | options
    return C.Captioner(vocab_size, encoder, **sizes).eval()


# ------------------------------------------------------------------------------------------ data


def test_generator_is_deterministic_with_the_seed():
    a, b, c = C.make_shapes(40, seed=3), C.make_shapes(40, seed=3), C.make_shapes(40, seed=4)
    assert np.array_equal(a.inputs, b.inputs) and a.captions == b.captions and np.array_equal(a.split, b.split)
    assert not np.array_equal(a.inputs, c.inputs)


def test_captions_of_one_shape_match_the_pixels_drawn():
    data = C.make_shapes(120, seed=1)
    checked = 0
    for image, captions, content in zip(data.inputs, data.captions, data.contents):
        if content[0] != "one":
            continue
        mask = image.max(0) > 0.5  # the shape's pixels: every colour has a channel above 0.5, the background not
        ys, xs = np.nonzero(mask)
        cy, cx = ys.mean(), xs.mean()  # the centroid, measured on the image
        colour = nearest_colour(image[:, round(cy), round(cx)])
        where = "left" if cx < 12 else "right" if cx > 20 else "top" if cy < 12 else "bottom" if cy > 20 else "centre"
        size = "large" if mask.sum() > 60 else "small"
        height, width = np.ptp(ys) + 1, np.ptp(xs) + 1
        fill = mask.sum() / (height * width)
        top_width = mask[ys.min()].sum()
        bottom_width = mask[ys.max()].sum()
        if fill > 0.92:
            shape = "square"
        elif bottom_width >= 3 * top_width:
            shape = "triangle"
        elif fill > 0.65:
            shape = "circle"
        else:
            shape = "cross"
        for caption in captions:
            words = caption.split()
            assert colour in words and size in words and shape in words, (caption, colour, size, shape)
            assert C.WHERE[where] in caption, (caption, where, cx, cy)
        checked += 1
    assert checked > 30


def test_captions_of_two_shapes_name_the_top_or_left_one_first_in_the_active_template():
    data = C.make_shapes(80, seed=2)
    for image, captions, content in zip(data.inputs, data.captions, data.contents):
        if content[0] != "two":
            continue
        mask = image.max(0) > 0.5
        first = mask[:16] if "above" in captions[0] else mask[:, :16]  # the top (or left) half of the image
        half = image[:, :16] if "above" in captions[0] else image[:, :, :16]
        ys, xs = np.nonzero(first)
        assert nearest_colour(half[:, round(ys.mean()), round(xs.mean())]) == captions[0].split()[1], captions[0]


def test_every_caption_parses_back_to_its_content():
    for contents in C.all_contents().values():
        for content in contents:
            for caption in C.captions_for(content):
                assert C.parse_caption(caption) == content


def test_train_and_test_share_no_content_and_no_caption():
    data = C.make_shapes(600, seed=0)
    parts = {p: data.indices(p) for p in C.SPLITS}
    assert all(len(v) for v in parts.values())
    train = {c for i in parts["train"] for c in data.captions[i]}
    test = {c for i in parts["test"] for c in data.captions[i]}
    assert not train & test
    assert not {data.contents[i] for i in parts["train"]} & {data.contents[i] for i in parts["test"]}


def test_vocabulary_comes_from_training_captions_and_maps_new_words_to_unk():
    vocab = C.build_vocabulary([["a red circle"], ["a circle"]])
    assert C.encode_caption(vocab, "a purple circle") == [C.START_ID, vocab.id("a"), 0, vocab.id("circle"), C.END_ID]
    assert vocab.itos[:3] == ["<unk>", C.START, C.END]


# ------------------------------------------------------------------------------------------ model


def test_the_decoders_first_input_is_the_projected_image_feature():
    model = tiny_model()
    seen = {}
    model.rnn.register_forward_pre_hook(lambda module, args, kwargs: seen.update(x=args[0]), with_kwargs=True)
    features = torch.randn(2, 5)
    words = torch.tensor([[C.START_ID, 4, 5], [C.START_ID, 6, 0]])
    model(features, torch.tensor([0, 1, 1])[:2], words, torch.tensor([3, 2]))
    projected = model.image_projection((features - model.encoder.mean) / model.encoder.std)
    torch.testing.assert_close(seen["x"][:, 0], projected)
    torch.testing.assert_close(seen["x"][:, 1], model.embedding.weight[C.START_ID].expand(2, -1))


def test_the_image_feature_conditions_the_first_word():
    model = tiny_model()
    features = torch.randn(2, 5)
    logits, _ = model.start(features)
    assert not torch.allclose(logits[0], logits[1])
    again, _ = model.start(features[[1, 1]])
    torch.testing.assert_close(again[0], logits[1])


def test_the_image_feature_conditions_the_first_word_with_the_cnn():
    model = tiny_model("cnn", feature_size=8)
    images = torch.as_tensor(C.make_shapes(4, seed=0).inputs)
    logits, _ = model.start(images[:2])
    assert not torch.allclose(logits[0], logits[1])


def test_loss_is_the_same_for_a_padded_batch_and_one_item_at_a_time():
    data = C.make_shapes(6, seed=0)
    vocab = C.build_vocabulary(data.captions)
    encoded = [[C.encode_caption(vocab, c) for c in refs] for refs in data.captions]
    model = tiny_model("cnn", vocab_size=len(vocab), feature_size=8)
    batches = C.CaptionBatches(data.inputs, encoded)
    whole = model.loss(batches.collate(list(range(6))))
    singles = [model.loss(batches.collate([i])) for i in range(6)]
    assert whole.count == sum(s.count for s in singles) == sum(len(c) - 1 for refs in encoded for c in refs)
    total = sum(s.loss.item() * s.count for s in singles)
    assert whole.loss.item() * whole.count == pytest.approx(total, rel=1e-5)


def test_loss_matches_a_step_by_step_reference():
    model = tiny_model()
    features = torch.randn(1, 5)
    ids = [C.START_ID, 5, 7, C.END_ID]
    batch = C.CaptionBatches(features.numpy(), [[ids]]).collate([0])
    logits, state = model.start(features)
    total = 0.0
    for t, word in enumerate(ids[1:]):
        total -= torch.log_softmax(logits, -1)[0, word].item()
        if t + 2 < len(ids):
            logits, state = model.step(torch.tensor([word]), state)
    assert model.loss(batch).loss.item() == pytest.approx(total / 3, rel=1e-5)


# ------------------------------------------------------------------------------------------ decoding


def test_beam_size_one_is_greedy_decoding():
    for cell in ("lstm", "gru"):
        model = tiny_model(cell=cell)
        features = torch.randn(8, 5) * 3
        greedy = C.greedy_decode(model, features, max_length=6)
        assert C.beam_decode(model, features, beam_size=1, max_length=6) == greedy
        assert any(greedy)  # not all empty: the comparison means something


def _log_prob(model, features, words, max_length):
    """log p(words [</s>]) by teacher forcing: </s> is scored unless the caption has max_length words."""
    logits, state = model.start(features)
    total = 0.0
    targets = words + ([C.END_ID] if len(words) < max_length else [])
    for t, word in enumerate(targets):
        masked = logits.clone()
        masked[:, : C.START_ID + 1] = float("-inf")
        total += torch.log_softmax(masked, -1)[0, word].item()
        if t + 1 < len(targets):
            logits, state = model.step(torch.tensor([word]), state)
    return total


def test_a_wide_beam_finds_the_most_likely_caption_of_an_exhaustive_search():
    model = tiny_model(vocab_size=5)  # two words (3, 4) besides <unk>, <s>, </s>
    features = torch.randn(3, 5) * 3
    max_length = 3
    beam = C.beam_decode(model, features, beam_size=16, max_length=max_length)
    for b in range(3):
        candidates = [list(w) for n in range(max_length + 1) for w in itertools.product((3, 4), repeat=n)]
        best = max(candidates, key=lambda w: _log_prob(model, features[b : b + 1], w, max_length))
        assert beam[b] == best


# ------------------------------------------------------------------------------------------ your features


def write_features(tmp_path, rows: int = 30, lines: list[str] | None = None, shape=None):
    rng = np.random.default_rng(0)
    features = rng.normal(size=shape or (rows, 6)).astype(np.float32)
    np.save(tmp_path / "f.npy", features)
    words = ["red", "blue", "green"]
    text = lines if lines is not None else [f"a {words[i % 3]} thing\tthe thing is {words[i % 3]}" for i in range(rows)]
    (tmp_path / "c.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return tmp_path / "f.npy", tmp_path / "c.txt"


def test_features_of_the_wrong_shape_are_named(tmp_path):
    f, c = write_features(tmp_path, shape=(30, 2, 3))
    with pytest.raises(ValueError, match=r"Expected features of shape \(N, F\).*Received shape \(30, 2, 3\)"):
        C.load_features(f, c)


def test_a_caption_count_not_matching_the_features_is_named(tmp_path):
    f, c = write_features(tmp_path, rows=30, lines=["a thing"] * 29)
    with pytest.raises(ValueError, match=r"30 rows in .*Received 29 lines"):
        C.load_features(f, c)


def test_an_empty_caption_is_named_with_its_line(tmp_path):
    lines = ["a thing"] * 30
    lines[4] = "a thing\t  "
    f, c = write_features(tmp_path, rows=30, lines=lines)
    with pytest.raises(ValueError, match="Empty caption on line 5"):
        C.load_features(f, c)
    lines[4] = ""
    write_features(tmp_path, rows=30, lines=lines)
    with pytest.raises(ValueError, match="Empty caption on line 5"):
        C.load_features(f, c)


def test_train_on_features_builds_the_vocabulary_from_training_rows_only(tmp_path):
    f, c = write_features(tmp_path)
    data = C.load_features(f, c, seed=0)
    test_row = int(data.indices("test")[0])
    lines = (tmp_path / "c.txt").read_text(encoding="utf-8").splitlines()
    lines[test_row] = "a zebra thing"  # a word only the test split has
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = C.train(f, c, epochs=1, hidden_size=16, embedding_dim=8, batch_size=8, progress=False,
                  run_dir=tmp_path / "run")  # fmt: skip
    assert "zebra" not in run.vocab and "thing" in run.vocab
    assert "content_match_greedy" not in run.report["test"] and run.report["baseline"]["bleu"] >= 0
    assert not (tmp_path / "run" / "plots" / "captions.png").exists()
    row = C.describe(tmp_path / "run", features=f, row=3)
    assert set(row["caption"].split()) <= set(run.vocab.itos[3:])
    with pytest.raises(ValueError, match=r"Expected features of shape \(N, 6\)"):
        np.save(tmp_path / "bad.npy", np.zeros((2, 4)))
        C.describe(tmp_path / "run", features=tmp_path / "bad.npy")


# ------------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    here = tmp_path_factory.mktemp("caption")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(here)  # the run directory lands in here/runs
        result = CliRunner().invoke(app, ["train", "--images", "60", "--epochs", "1", "--hidden", "16", "--embedding",
                                          "8", "--batch-size", "16", "--beam", "2", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    run_dir = result.output.split("run: ")[1].split()[0]
    return here, run_dir, result.output


def test_cli_train_writes_report_and_caption_grid_beside_the_baseline(cli_run):
    here, run_dir, output = cli_run
    assert "most frequent training caption" in output and "beam 2" in output
    run = f"{here}/{run_dir}"
    report = json.loads(open(f"{run}/report.json").read())
    assert {"bleu_greedy", "bleu_beam2", "content_match_greedy"} <= set(report["test"])
    assert report["baseline"]["most_frequent_caption"] and 0 <= report["baseline"]["bleu"] <= 100
    for name in ("captions.png", "loss.png"):
        assert open(f"{run}/plots/{name}", "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_describe_captions_a_test_item_with_its_references(cli_run):
    here, run_dir, _ = cli_run
    result = CliRunner().invoke(app, ["describe", "--run", f"{here}/{run_dir}", "--index", "0"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) >= 4 and all(line.startswith("  reference: ") for line in lines[1:])
    bad = CliRunner().invoke(app, ["describe", "--run", f"{here}/{run_dir}", "--index", "999"])
    assert isinstance(bad.exception, ValueError) and "Expected index in 0.." in str(bad.exception)


def test_cli_names_a_missing_captions_file():
    result = CliRunner().invoke(app, ["train", "--features", "f.npy"])
    assert isinstance(result.exception, ValueError) and "captions file" in str(result.exception)
