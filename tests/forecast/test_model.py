"""The forecasting model: shapes for every strategy and head, the recursive rollout against a loop
by hand, shift equivariance from level="last", losses against torch's own, seq2seq teacher
forcing, clear errors, and a short training run that beats the naive forecast on a sine wave."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from rnnkit.data.series import WindowDataset
from rnnkit.forecast.model import Forecast, ForecastConfig, ForecastModel

STRATEGIES = ["recursive", "direct", "seq2seq"]
HEADS = ["point", "gaussian"]


def make_model(strategy="direct", n_features=1, n_targets=1, horizon=3, **options) -> ForecastModel:
    options.setdefault("hidden_sizes", (6, 5))
    config = ForecastConfig(n_features=n_features, n_targets=n_targets, horizon=horizon, strategy=strategy, **options)
    return ForecastModel(config)


def features_for(strategy: str, n_targets: int) -> int:
    """Two covariates where the strategy can use them; recursive reads the targets only."""
    return n_targets if strategy == "recursive" else n_targets + 2


# Shapes


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize(
    ("window", "n_targets", "horizon", "options"),
    [
        (1, 1, 1, {}),
        (7, 1, 4, {"dense": 8}),
        (5, 2, 3, {"hidden_sizes": (4,), "dropout": 0.2}),
        (9, 3, 6, {"cell": "gru", "dense": 5, "level": "none"}),
    ],
)
def test_forecasts_have_shape_batch_horizon_targets_and_positive_std(
    strategy, head, window, n_targets, horizon, options
):
    n_features = features_for(strategy, n_targets)
    model = make_model(strategy, n_features, n_targets, horizon, head=head, **options)
    inputs, targets = torch.randn(4, window, n_features), torch.randn(4, horizon, n_targets)
    for forecast in (model(inputs), model(inputs, targets), model.predict(inputs)):
        assert isinstance(forecast, Forecast)
        assert forecast.mean.shape == (4, horizon, n_targets)
        if head == "point":
            assert forecast.std is None
        else:
            assert forecast.std.shape == (4, horizon, n_targets)
            assert bool((forecast.std > 0).all())
    out = model.loss((inputs, targets))
    assert out.count == 4 and out.state is None
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("cell", ["gru", "lstm_peephole", "rnn_tanh"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_any_cell_name_runs_every_strategy(cell, strategy):
    model = make_model(strategy, horizon=2, cell=cell, head="gaussian")
    forecast = model(torch.randn(3, 6, 1), torch.randn(3, 2, 1))
    assert forecast.mean.shape == forecast.std.shape == (3, 2, 1)
    model.loss((torch.randn(3, 6, 1), torch.randn(3, 2, 1))).loss.backward()


def test_layers_may_differ_in_size_one_recurrent_per_entry():
    model = make_model("seq2seq", hidden_sizes=(50, 100))
    assert [layer.hidden_size for layer in model.encoder] == [50, 100]
    assert [layer.hidden_size for layer in model.decoder] == [50, 100]
    assert [layer.input_size for layer in model.decoder] == [1, 50]  # the decoder reads one step of the targets


# Recursive rollout


@pytest.mark.parametrize("head", HEADS)
def test_recursive_rollout_equals_a_loop_over_the_one_step_network_by_hand(head):
    model = make_model("recursive", n_features=2, n_targets=2, horizon=4, head=head).eval()
    one_step = ForecastModel(replace(ForecastConfig(**model.config), horizon=1)).eval()
    one_step.load_state_dict(model.state_dict())  # the same network: recursive weights do not depend on H
    inputs = torch.randn(3, 6, 2)

    window, means, stds = inputs.clone(), [], []
    for _ in range(7):
        step = one_step(window)
        means.append(step.mean[:, 0])
        stds.append(step.std[:, 0] if head == "gaussian" else None)
        window = torch.cat([window[:, 1:], step.mean[:, :1]], dim=1)  # drop the oldest row, append the forecast
    expected_mean = torch.stack(means, dim=1)

    with torch.no_grad():
        assert torch.allclose(model(inputs).mean, expected_mean[:, :4], atol=1e-6)
        assert torch.allclose(model.predict(inputs, horizon=7).mean, expected_mean, atol=1e-6)
        if head == "gaussian":
            assert torch.allclose(model.predict(inputs, horizon=7).std, torch.stack(stds, dim=1), atol=1e-6)


# Level normalisation


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("head", HEADS)
def test_level_last_makes_forecasts_move_exactly_with_a_constant_added_to_the_series(strategy, head):
    n_targets, c = 2, 7.5
    n_features = features_for(strategy, n_targets)
    model = make_model(strategy, n_features, n_targets, horizon=3, head=head, dense=4)
    inputs, targets = torch.randn(5, 8, n_features), torch.randn(5, 3, n_targets)
    shifted = inputs.clone()
    shifted[..., :n_targets] += c  # the target columns only: covariates stay as they are

    before, after = model.predict(inputs), model.predict(shifted)
    assert torch.allclose(after.mean, before.mean + c, atol=1e-5)
    if head == "gaussian":
        assert torch.allclose(after.std, before.std, atol=1e-5)
    for mode in (True, False):  # teacher forcing (training) and free running (eval) alike
        model.train(mode)
        loss_before = model.loss((inputs, targets)).loss
        loss_after = model.loss((shifted, targets + c)).loss
        assert torch.allclose(loss_after, loss_before, atol=1e-5)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_level_none_feeds_windows_as_they_are_so_forecasts_do_not_follow_a_shift(strategy):
    model = make_model(strategy, level="none").eval()
    inputs = torch.randn(4, 8, 1)
    moved = model.predict(inputs + 3.0).mean - model.predict(inputs).mean
    assert not torch.allclose(moved, torch.full_like(moved, 3.0), atol=1e-3)


# Losses


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_gaussian_loss_is_torch_gaussian_nll_with_its_constant(strategy):
    model = make_model(strategy, n_targets=1, horizon=3, head="gaussian").eval()
    inputs, targets = torch.randn(6, 5, 1), torch.randn(6, 3, 1)
    steps = 1 if strategy == "recursive" else 3  # recursive learns the next step only
    forecast = model(inputs)
    mean, var, scored = forecast.mean[:, :steps], forecast.std[:, :steps] ** 2, targets[:, :steps]
    expected = torch.nn.GaussianNLLLoss(full=True)(mean, scored, var)
    by_hand = (0.5 * (math.log(2 * math.pi) + torch.log(var) + (scored - mean) ** 2 / var)).mean()
    loss = model.loss((inputs, targets)).loss
    assert torch.allclose(loss, expected, atol=1e-6)
    assert torch.allclose(loss, by_hand, atol=1e-5)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_point_loss_is_mean_squared_error(strategy):
    model = make_model(strategy, n_targets=1, horizon=3).eval()
    inputs, targets = torch.randn(6, 5, 1), torch.randn(6, 3, 1)
    mean = model(inputs).mean
    steps = 1 if strategy == "recursive" else 3  # recursive learns the next step only
    expected = ((mean[:, :steps] - targets[:, :steps]) ** 2).mean()
    assert torch.allclose(model.loss((inputs, targets)).loss, expected, atol=1e-6)


def test_recursive_loss_ignores_every_target_after_the_first():
    model = make_model("recursive", horizon=4).eval()
    inputs, targets = torch.randn(5, 6, 1), torch.randn(5, 4, 1)
    changed = targets.clone()
    changed[:, 1:] += 100.0
    assert model.loss((inputs, targets)).loss == model.loss((inputs, changed)).loss


# seq2seq teacher forcing


@pytest.mark.parametrize("level", ["last", "none"])
def test_seq2seq_decoder_reads_true_targets_in_training_and_its_own_forecasts_in_eval(level):
    model = make_model("seq2seq", n_features=3, n_targets=2, horizon=4, level=level)
    inputs, targets = torch.randn(5, 7, 3), torch.randn(5, 4, 2)
    last = inputs[:, -1:, :2]
    offset = last if level == "last" else torch.zeros_like(last)
    fed = []
    model.decoder[0].register_forward_pre_hook(lambda module, args: fed.append(args[0].detach()))

    model.train()
    train_loss = model.loss((inputs, targets)).loss
    expected = torch.cat([last, targets[:, :-1]], dim=1) - offset
    assert torch.allclose(torch.cat(fed, dim=1), expected, atol=1e-6)

    model.eval()
    fed.clear()
    eval_loss = model.loss((inputs, targets)).loss
    fed_eval = torch.cat(fed, dim=1)
    fed.clear()
    forecast = model(inputs).mean
    assert len(fed) == 4  # free running: one decoder call per step
    expected = torch.cat([last, forecast[:, :-1]], dim=1) - offset
    assert torch.allclose(fed_eval, expected, atol=1e-6)
    assert not torch.allclose(train_loss, eval_loss)


def test_seq2seq_forward_without_targets_runs_free_even_in_training_mode():
    model = make_model("seq2seq", horizon=3).train()
    inputs = torch.randn(2, 5, 1)
    assert torch.allclose(model(inputs).mean, model.predict(inputs).mean, atol=1e-6)


# Config and errors


def test_config_dict_is_json_and_rebuilds_the_same_model():
    model = make_model("seq2seq", n_features=3, n_targets=2, horizon=2, hidden_sizes=(4, 6), head="gaussian")
    config = json.loads(json.dumps(model.config))
    rebuilt = ForecastModel(ForecastConfig(**config))
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config == model.config and ForecastConfig(**config).hidden_sizes == (4, 6)
    inputs = torch.randn(3, 5, 3)
    assert torch.equal(rebuilt.predict(inputs).mean, model.predict(inputs).mean)


def test_recursive_with_covariates_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"covariates.*n_features == n_targets.*n_features=3, n_targets=1"):
        ForecastConfig(n_features=3, n_targets=1, strategy="recursive")


@pytest.mark.parametrize(
    ("option", "value", "accepted"),
    [
        ("strategy", "mimo", "['recursive', 'direct', 'seq2seq']"),
        ("head", "quantile", "['point', 'gaussian']"),
        ("level", "mean", "['last', 'none']"),
        ("cell", "transformer", "'lstm'"),
    ],
)
def test_bad_option_values_list_the_accepted_ones(option, value, accepted):
    with pytest.raises(ValueError, match=f"Expected {option} to be one of .*{accepted}.*Received: {option}={value!r}"):
        ForecastConfig(**{option: value})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"horizon": 0}, "horizon a positive integer"),
        ({"n_features": 1, "n_targets": 2}, "n_targets <= n_features"),
        ({"hidden_sizes": ()}, "non-empty tuple"),
        ({"hidden_sizes": (8, 0)}, "hidden_sizes a positive integer"),
        ({"dense": -1}, "dense a width >= 0"),
        ({"dropout": 1.0}, r"dropout in \[0, 1\)"),
    ],
)
def test_bad_sizes_say_what_is_expected(options, message):
    with pytest.raises(ValueError, match=message):
        ForecastConfig(**options)


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 2), (4, 6, 3, 1), (0, 6, 3)])
def test_wrong_input_shapes_name_the_expected_shape(shape):
    model = make_model("direct", n_features=3, n_targets=1)
    with pytest.raises(ValueError, match=r"Expected inputs of shape \(B, W, F\) = \(\*, \*, 3\)\. Received shape"):
        model(torch.randn(shape))
    with pytest.raises(ValueError, match=r"\(B, W, F\) = \(\*, \*, 3\)"):
        model.predict(torch.randn(shape))


@pytest.mark.parametrize("shape", [(4, 2, 1), (4, 3, 2), (5, 3, 1), (4, 3)])
def test_wrong_target_shapes_name_the_expected_shape(shape):
    model = make_model("seq2seq", n_features=3, n_targets=1, horizon=3)
    with pytest.raises(ValueError, match=r"Expected targets of shape \(B, H, k\) = \(4, 3, 1\)"):
        model.loss((torch.randn(4, 6, 3), torch.randn(shape)))


@pytest.mark.parametrize("strategy", ["direct", "seq2seq"])
def test_only_recursive_forecasts_another_horizon_than_configured(strategy):
    model = make_model(strategy, horizon=3)
    with pytest.raises(ValueError, match=r"configured horizon H=3.*Received: horizon=5"):
        model.predict(torch.randn(2, 5, 1), horizon=5)
    assert make_model("recursive", horizon=3).predict(torch.randn(2, 5, 1), horizon=5).mean.shape == (2, 5, 1)


def test_predict_restores_the_training_mode_and_keeps_no_graph():
    model = make_model("direct").train()
    forecast = model.predict(torch.randn(2, 5, 1))
    assert model.training and not forecast.mean.requires_grad


# Learning


def sine_windows(window: int, horizon: int, n: int = 260, period: int = 20):
    series = torch.sin(2 * math.pi * torch.arange(n, dtype=torch.float32) / period).unsqueeze(1)
    pairs = WindowDataset(series, n_targets=1, window=window, horizon=horizon)
    inputs, targets = zip(*(pairs[i] for i in range(len(pairs))))
    return torch.stack(inputs), torch.stack(targets)


@pytest.mark.parametrize("horizon", [1, 5])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_short_training_beats_the_naive_forecast_tenfold_on_a_sine_wave(strategy, horizon):
    torch.manual_seed(0)
    inputs, targets = sine_windows(window=10, horizon=horizon)
    train = int(0.75 * len(inputs))  # the later windows are held out
    model = make_model(strategy, horizon=horizon, hidden_sizes=(32,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        model.loss((inputs[:train], targets[:train])).loss.backward()
        optimizer.step()
    held_inputs, held_targets = inputs[train:], targets[train:]
    mse = ((model.predict(held_inputs).mean - held_targets) ** 2).mean()
    naive = ((held_inputs[:, -1:, :] - held_targets) ** 2).mean()  # repeat the last value over the horizon
    assert mse < 0.1 * naive


# Future covariates


def future_model(strategy: str, head: str = "point", horizon: int = 4, n_targets: int = 1, past: int = 1):
    """A model whose last 2 input columns are future covariates (and ``past`` past-only ones, not for recursive)."""
    past = 0 if strategy == "recursive" else past
    return make_model(strategy, n_features=n_targets + past + 2, n_targets=n_targets, horizon=horizon, head=head,
                      n_future=2, dense=3)  # fmt: skip


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("head", HEADS)
def test_future_covariates_give_the_same_shapes_and_a_loss_for_every_strategy(strategy, head):
    model = future_model(strategy, head, n_targets=2)
    inputs, targets, future = torch.randn(5, 7, model.n_features), torch.randn(5, 4, 2), torch.randn(5, 4, 2)
    forecast = model(inputs, future=future)
    assert forecast.mean.shape == (5, 4, 2) and (head == "point" or forecast.std.shape == (5, 4, 2))
    for mode in (True, False):
        model.train(mode)
        out = model.loss((inputs, targets, future))
        assert out.loss.isfinite() and out.count == 5
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_forecast_step_reads_the_future_covariates_of_its_own_step_and_never_of_later_ones(strategy):
    model = future_model(strategy).eval()
    inputs, future = torch.randn(3, 6, model.n_features), torch.randn(3, 4, 2)
    base = model.predict(inputs, future=future).mean
    later = future.clone()
    later[:, 2:] += 5.0  # change steps 3 and 4 only
    changed = model.predict(inputs, future=later).mean
    assert not torch.allclose(changed[:, 2:], base[:, 2:])  # the changed steps read them
    if strategy != "direct":  # step by step: steps 1 and 2 were forecast before steps 3 and 4 were read
        assert torch.equal(changed[:, :2], base[:, :2])


def test_recursive_rollout_with_future_covariates_appends_each_forecast_beside_its_steps_covariates():
    model = future_model("recursive", horizon=3).eval()
    one_step = ForecastModel(replace(ForecastConfig(**model.config), horizon=1)).eval()
    one_step.load_state_dict(model.state_dict())
    inputs, future = torch.randn(2, 5, 3), torch.randn(2, 6, 2)
    window, means = inputs.clone(), []
    for h in range(6):
        step = one_step(window, future=future[:, h : h + 1]).mean  # (B, 1, 1)
        means.append(step)
        window = torch.cat([window[:, 1:], torch.cat([step, future[:, h : h + 1]], dim=-1)], dim=1)
    with torch.no_grad():
        assert torch.allclose(model.predict(inputs, horizon=6, future=future).mean, torch.cat(means, 1), atol=1e-6)


def test_future_covariates_missing_or_misshapen_or_unexpected_get_clear_errors():
    model = future_model("direct")
    inputs = torch.randn(3, 6, model.n_features)
    with pytest.raises(ValueError, match=r"reads 2 future covariate\(s\).*\(3, 4, 2\). Received: NoneType"):
        model(inputs)
    with pytest.raises(ValueError, match=r"future of shape \(B, H, C\) = \(3, 4, 2\). Received shape \(3, 3, 2\)"):
        model.predict(inputs, future=torch.randn(3, 3, 2))
    with pytest.raises(ValueError, match=r"no future covariates \(n_future=0\)"):
        make_model("direct").predict(torch.randn(3, 6, 1), future=torch.randn(3, 3, 1))
    with pytest.raises(ValueError, match=r"n_future in \[0, n_features - n_targets\] = \[0, 1\]"):
        ForecastConfig(n_features=2, n_targets=1, n_future=2)
    with pytest.raises(ValueError, match=r"past-only covariates.*n_features=4, n_targets=1, n_future=2"):
        ForecastConfig(n_features=4, n_targets=1, n_future=2, strategy="recursive")
