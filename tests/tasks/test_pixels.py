"""Sequential and permuted digits: pixel order, permutation, baselines, a few training steps, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rnnkit.commands.memory import app
from rnnkit.data.sequences import load_digits_data
from rnnkit.tasks.classify import baselines
from rnnkit.tasks.pixels import pixel_digits, pixel_permutation, prior_nats, train_digits


def test_permutation_is_fixed_by_its_seed_and_is_a_permutation():
    assert (pixel_permutation(3) == pixel_permutation(3)).all()
    assert not (pixel_permutation(3) == pixel_permutation(4)).all()
    assert sorted(pixel_permutation(3).tolist()) == list(range(64))


def test_plain_digits_are_read_row_by_row_and_permuted_ones_in_the_fixed_order():
    images = load_digits_data(seed=1).test.x  # (N, 8, 8) rows as steps, in [0, 1]
    plain, permuted = pixel_digits(seed=1).test, pixel_digits(permuted=True, seed=1).test
    assert plain.x.shape == permuted.x.shape == (len(images), 64, 1) and plain.x.dtype == np.float32
    assert (plain.lengths == 64).all() and (plain.y == permuted.y).all()
    np.testing.assert_array_equal(plain.x[:, :, 0], images.reshape(len(images), 64))  # pixel 8r + c at step 8r + c
    order = pixel_permutation(1)
    np.testing.assert_array_equal(permuted.x[:, :, 0], plain.x[:, order, 0])
    np.testing.assert_array_equal(np.sort(permuted.x, axis=1), np.sort(plain.x, axis=1))  # the same pixel values
    assert not np.array_equal(permuted.x, plain.x)


def test_baselines_majority_class_and_order_blind_logistic_regression():
    plain, permuted = pixel_digits(seed=0), pixel_digits(permuted=True, seed=0)
    scores, scores_permuted = baselines(plain), baselines(permuted)
    majority = np.bincount(plain.train.y).argmax()
    assert scores["majority class"]["accuracy"] == pytest.approx(np.mean(plain.test.y == majority))
    regression = "logistic regression (flattened input)"
    assert scores[regression]["accuracy"] > 0.9
    # it sees all pixels at once: reordering them changes nothing
    assert scores_permuted[regression]["accuracy"] == pytest.approx(scores[regression]["accuracy"], abs=0.006)
    assert prior_nats(plain.train.y, plain.test.y, 10) == pytest.approx(np.log(10), abs=0.01)  # ~balanced classes


def test_a_few_training_steps_give_a_curve_and_a_many_to_one_model():
    data = pixel_digits(permuted=True, seed=0, limit=300)
    r = train_digits("rnn_tanh", steps=5, hidden_size=8, batch_size=16, eval_every=2, progress=False, data=data)
    assert r["task"] == "permuted digits" and r["T"] == 64
    assert [p["step"] for p in r["curve"]] == [0, 2, 4, 5]
    assert r["test_accuracy"] == r["curve"][-1]["test_accuracy"]
    logits = r["model"](torch.from_numpy(data.test.x[:3]))
    assert logits.shape == (3, 10)
    first = r["model"].rnn.layer_parameters(0)["weight_ih"]
    assert first.shape[1] == 1  # one pixel per step
    with pytest.raises(ValueError, match="steps, hidden size"):
        train_digits("lstm", steps=0, data=data, progress=False)
    with pytest.raises(ValueError, match="Unknown cell"):
        train_digits("lsmt", steps=1, data=data, progress=False)


def test_tasks_digits_compare_prints_models_and_baselines_and_writes_the_curves(tmp_path):
    args = ["digits", "--compare", "rnn_tanh,gru", "--steps", "2", "--hidden", "8", "--eval-every", "1",
            "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("rnn_tanh-8", "gru-8", "baseline: majority class", "logistic regression", "sequential digits"):
        assert text in result.output
    assert (tmp_path / "digits_compare.png").stat().st_size > 1000
    assert (tmp_path / "digits_compare.csv").read_text().count("\n") == 1 + 2 * 3  # header, 2 cells x steps 0..2
