"""``sd.fit``: minimisers, curve fitting, optimisers, minibatches, chunks, devices, results, bad input."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import textwrap
import warnings

import matplotlib

matplotlib.use("Agg")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402
import sympy  # noqa: E402

import symdiff as sd  # noqa: E402
from symdiff import _cache  # noqa: E402
from symdiff._fit import FitError, FitResult, FitWarning, chunk_size, fit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = "(w*x + b - y)**2"
OSC = "(A*exp(-k*t)*cos(w*t + p) - y)**2"
OSC_TRUE = {"A": 2.0, "k": 0.3, "w": 1.5, "p": 0.5}
OSC_START = {"A": 1.0, "k": 0.1, "w": 1.4, "p": 0.0}


def line_data(n=40, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, n).astype(dtype)
    return {"x": x, "y": (3 * x + 1 + 0.01 * rng.normal(size=n)).astype(dtype)}


def oscillator_data(n=200, seed=0):  # the quick example's size: the compiled fit is shared
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 10, n)
    a, k, w, p = OSC_TRUE.values()
    return {"t": t, "y": a * np.exp(-k * t) * np.cos(w * t + p) + 0.03 * rng.normal(size=n)}


def quiet(*args, **kwargs):
    kwargs.setdefault("progress", False)
    return fit(*args, **kwargs)


# ---------------------------------------------------------------- plain minimisation (data={})

ROSENBROCK = "(1 - a)**2 + 100*(b - a**2)**2"


def test_rosenbrock_lbfgs_float64():
    r = quiet(ROSENBROCK, {"a": -1.2, "b": 1.0}, {}, steps=80, optimizer="lbfgs", dtype="float64")
    assert r.params["a"].dtype == np.float64
    np.testing.assert_allclose([r.params["a"], r.params["b"]], [1.0, 1.0], atol=1e-6)
    assert r.loss < 1e-10
    assert r.loss_history[0] == pytest.approx(24.2)  # f(-1.2, 1)
    assert len(r.loss_history) == 80
    assert r.model == 0  # no data symbols: the model is the value of the objective


def test_rosenbrock_adam_float32():
    r = quiet(ROSENBROCK, {"a": -1.2, "b": 1.0}, {}, steps=3000, optimizer="adam", lr=0.05)
    np.testing.assert_allclose([r.params["a"], r.params["b"]], [1.0, 1.0], atol=3e-3)


def test_booth():
    r = quiet("(x + 2*y - 7)**2 + (2*x + y - 5)**2", {"x": 0.0, "y": 0.0}, {}, steps=500, optimizer="adam", lr=0.1)
    np.testing.assert_allclose([r.params["x"], r.params["y"]], [1.0, 3.0], atol=1e-3)
    assert r.loss < 1e-5


HIMMELBLAU_MINIMA = np.array([(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)])


@pytest.mark.parametrize("start", [(0.0, 0.0), (-1.0, 1.0), (-2.0, -2.0), (2.0, -1.0)])
def test_himmelblau_reaches_a_minimum(start):
    r = quiet("(x**2 + y - 11)**2 + (x + y**2 - 7)**2", {"x": start[0], "y": start[1]}, {},
              steps=60, optimizer="lbfgs", dtype="float64")
    found = np.array([r.params["x"], r.params["y"]])
    assert np.min(np.linalg.norm(HIMMELBLAU_MINIMA - found, axis=1)) < 1e-4
    assert r.loss < 1e-8


def test_array_parameter_plain_minimisation():
    # the objective is the mean over the elements: gradient (x - 3)/2 per element, so sgd with lr=2 lands
    # every element on 3 in one step
    start = np.array([0.0, 1.0, 2.0, 5.0], np.float32)
    r = quiet("(x - 3)**2", {"x": start}, {}, steps=2, optimizer="sgd", lr=2.0)
    assert r.params["x"].shape == (4,)
    np.testing.assert_allclose(r.loss_history, [np.mean((start - 3) ** 2), 0.0])
    np.testing.assert_allclose(r.params["x"], 3.0)
    assert isinstance(r.model, sympy.NDimArray) and r.model.shape == (4,)


# ---------------------------------------------------------------- curve fitting


def test_damped_oscillator_recovers_true_parameters():
    data = oscillator_data()
    r = quiet(OSC, OSC_START, data, steps=60, optimizer="lbfgs")
    assert r.dtype == np.float64  # np.linspace data is float64
    for name, true in OSC_TRUE.items():
        assert float(r.params[name]) == pytest.approx(true, rel=0.03), name
    assert r.loss < 2 * 0.03**2  # about the noise variance
    assert r.target == sympy.Symbol("y", real=True)
    assert r.prediction.free_symbols == {sympy.Symbol("t", real=True)}
    assert r.formula(3).startswith("y = 2.0")
    # the model keeps the data symbols free and has the fitted numbers in
    assert {s.name for s in r.model.free_symbols} == {"t", "y"}
    fitted = r.predict(t=data["t"])
    assert np.sqrt(np.mean((fitted - data["y"]) ** 2)) < 0.05


def test_line_fit_result_members():
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=30, optimizer="lbfgs")
    assert isinstance(r, FitResult)
    assert set(r.params) == {"w", "b"}
    assert all(isinstance(v, np.ndarray) and v.shape == () for v in r.params.values())
    assert float(r.params["w"]) == pytest.approx(3.0, abs=0.01)
    assert float(r.params["b"]) == pytest.approx(1.0, abs=0.01)
    assert isinstance(r.loss_history, np.ndarray) and r.loss_history.shape == (30,)
    assert r.loss_history[0] > r.loss_history[-1]
    # the derivative prints the closed-form gradient of the elementwise loss
    assert isinstance(r.derivative, sd.Derivative)
    assert str(r.derivative) == "d/db = 2*(b + w*x - y)\nd/dw = 2*x*(b + w*x - y)"
    assert [s.name for s in r.derivative.wrt] == ["b", "w"]
    # the objective's gradient is the mean of those closed forms over the rows: zero at the least-squares optimum
    elementwise = r.derivative.array(b=r.params["b"], w=r.params["w"], **line_data())
    np.testing.assert_allclose(np.mean(np.asarray(elementwise), axis=0), 0.0, atol=1e-4)
    # the model: the loss with the numbers in, data symbols free
    x, y = sympy.symbols("x y", real=True)
    assert r.model.free_symbols == {x, y}
    assert float(r.model.subs({x: 1.0, y: 4.0})) == pytest.approx(0.0, abs=1e-3)
    text = repr(r)
    assert text.startswith("FitResult(lbfgs, 30 steps")
    assert "\n  b = 0.99" in text and "\n  w = 3.00" in text and "\n  y ~ 3.00" in text
    assert str(r) == text


def test_loss_forms_agree_text_sympy_callable():
    data = line_data()
    w, b, x, y = sympy.symbols("w b x y")
    results = [
        quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=50, lr=0.1),
        quiet((w * x + b - y) ** 2, {"w": 0.0, "b": 0.0}, data, steps=50, lr=0.1),
        quiet(lambda w, b, x, y: (w * x + b - y) ** 2, {"w": 0.0, "b": 0.0}, data, steps=50, lr=0.1),
    ]
    for r in results[1:]:
        np.testing.assert_allclose(r.loss_history, results[0].loss_history, rtol=1e-6)


def test_array_parameters_broadcast_against_data_columns():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    slopes = np.array([1.0, -2.0, 0.5], np.float32)
    r = quiet("(c*x - y)**2", {"c": np.zeros(3, np.float32)}, {"x": x, "y": x * slopes}, steps=300,
              optimizer="adam", lr=0.05)
    np.testing.assert_allclose(r.params["c"], slopes, atol=1e-3)
    assert r.prediction.shape == (3,)  # one fitted formula per column
    assert "shape (3,)" in repr(r)


# ---------------------------------------------------------------- optimisers


@pytest.mark.parametrize("optimizer, lr, steps", [("sgd", 0.3, 200), ("adam", 0.1, 200), ("adamw", 0.1, 200),
                                                  ("lbfgs", None, 20)])
def test_named_optimizers(optimizer, lr, steps):
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=steps, optimizer=optimizer, lr=lr)
    assert float(r.params["w"]) == pytest.approx(3.0, abs=0.02)
    assert r.optimizer.startswith(optimizer)


def test_optax_transformation_and_default_lrs():
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.2, momentum=0.9))
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=150, optimizer=tx)
    assert float(r.params["w"]) == pytest.approx(3.0, abs=0.02)
    # optax's own L-BFGS object works too (it needs the value function: passed as extra args)
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=20, optimizer=optax.lbfgs())
    assert float(r.params["w"]) == pytest.approx(3.0, abs=0.02)
    # lr=None: the optimiser's own default (adam: 1e-3, so it barely moves in 10 steps)
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=10, optimizer="adam", lr=None)
    assert abs(float(r.params["w"])) == pytest.approx(10 * 1e-3, rel=0.05)
    assert r.optimizer == "adam(lr=0.001)"


def test_bad_optimizer_and_lr():
    with pytest.raises(sd.SymdiffError, match="unknown optimizer 'rmsprop'"):
        quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), optimizer="rmsprop")
    with pytest.raises(sd.SymdiffError, match="optax.GradientTransformation"):
        quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), optimizer=42)
    with pytest.raises(sd.SymdiffError, match="lr must be a positive number"):
        quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), lr=-1.0)


# ---------------------------------------------------------------- minibatches


def test_minibatches_reproducible_and_seeded():
    data = line_data(n=50)
    kw = dict(steps=60, optimizer="sgd", lr=0.2, batch_size=8)
    a = quiet(LINE, {"w": 0.0, "b": 0.0}, data, seed=1, **kw)
    b = quiet(LINE, {"w": 0.0, "b": 0.0}, data, seed=1, **kw)
    c = quiet(LINE, {"w": 0.0, "b": 0.0}, data, seed=2, **kw)
    np.testing.assert_array_equal(a.loss_history, b.loss_history)
    assert not np.array_equal(a.loss_history, c.loss_history)
    assert float(a.params["w"]) == pytest.approx(3.0, abs=0.05)
    # batch_size at least the row count is the full batch
    full = quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=60, optimizer="sgd", lr=0.2)
    big = quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=60, optimizer="sgd", lr=0.2, batch_size=50)
    np.testing.assert_array_equal(full.loss_history, big.loss_history)


def test_minibatch_epochs_visit_every_row_once():
    # objective mean(w * e) over a batch of one-hot rows e: its gradient marks the rows in the batch, and
    # sgd with lr = 5 rows * 20 columns moves w[i] by exactly -1 for each visit of row i
    one_hot = np.eye(20, dtype=np.float32)

    def visits(steps, seed):
        r = quiet("w*e", {"w": np.zeros(20, np.float32)}, {"e": one_hot}, steps=steps, optimizer="sgd",
                  lr=100.0, batch_size=5, seed=seed)
        return -r.params["w"]

    first = visits(1, seed=3)
    assert sorted(first) == [0.0] * 15 + [1.0] * 5  # one batch: 5 distinct rows
    np.testing.assert_array_equal(visits(3, seed=3)[first == 1], 1.0)  # the same first batch again
    assert sorted(visits(3, seed=3)) == [0.0] * 5 + [1.0] * 15  # 3 batches of an epoch: no row twice
    np.testing.assert_array_equal(visits(4, seed=3), 1.0)  # a whole epoch: every row exactly once
    np.testing.assert_array_equal(visits(8, seed=3), 2.0)  # two epochs, reshuffled
    assert not np.array_equal(visits(1, seed=4), first)  # another seed, another order


# ---------------------------------------------------------------- chunks, compilation, progress


def test_chunks_compile_once_and_are_reused():
    assert chunk_size(64) == 4 and chunk_size(1000) == 64 and chunk_size(3) == 1
    data = line_data(n=33)
    before = _cache.stats().get("fit_traces", 0)
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=70, optimizer="adam", lr=0.05)  # 18 chunks of 4
    after_first = _cache.stats()["fit_traces"]
    assert after_first - before == 1  # one trace for all chunks, the partial last chunk included
    assert r.loss_history.shape == (70,)
    # same problem, other values, seed, learning rate and step count of the same chunk length: no new trace
    r2 = quiet(LINE, {"w": 1.0, "b": -1.0}, line_data(n=33, seed=5), steps=79, optimizer="adam", lr=0.2, seed=9)
    assert _cache.stats()["fit_traces"] == after_first
    assert r2.loss_history.shape == (79,)


def test_chunked_run_equals_single_chunk_run(monkeypatch):
    data = line_data()
    many = quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=40, optimizer="adam", lr=0.05)  # chunks of 4
    import symdiff._fit as fit_module

    monkeypatch.setattr(fit_module, "chunk_size", lambda steps: steps)
    one = quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=40, optimizer="adam", lr=0.05)
    np.testing.assert_allclose(one.loss_history, many.loss_history, rtol=1e-6)


def test_progress_bar_shows_loss(capsys):
    fit(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=70, optimizer="adam", lr=0.05, progress=True)
    err = capsys.readouterr().err
    assert "sd.fit" in err and "70/70" in err and "loss=" in err


# ---------------------------------------------------------------- dtypes


def test_dtype_inference_and_override():
    lists = {"x": [0.0, 1.0, 2.0], "y": [1.0, 4.0, 7.0]}
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, lists, steps=5)
    assert r.params["w"].dtype == np.float32 and r.loss_history.dtype == np.float32
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(dtype=np.float64), steps=5)
    assert r.params["w"].dtype == np.float64
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(dtype=np.float64), steps=5, dtype="float32")
    assert r.params["w"].dtype == np.float32
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, {"x": np.arange(5), "y": 2 * np.arange(5)}, steps=5)  # ints promoted
    assert r.params["w"].dtype == np.float32
    with pytest.raises(sd.DtypeError):
        quiet(LINE, {"w": 0.0, "b": 0.0}, lists, steps=5, dtype="int8")


def test_bfloat16_fit_moves_and_stays_finite():
    # Adam's hyperparameters stay float32 (b2=0.999 rounds to 1 in bfloat16, which would make its update NaN)
    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=100, optimizer="adam", lr=0.1, dtype="bfloat16")
    assert r.params["w"].dtype == jax.numpy.bfloat16 and not r.stopped_early
    assert float(r.params["w"]) == pytest.approx(3.0, abs=0.1)
    assert r.loss_history.dtype == np.float32


def test_float64_really_computes_in_float64():
    # 1 + 1e-10 is 1 in float32: the gradient of (w - 1 - 1e-10)**2 at w=1 only exists in float64
    r = quiet("(w - c)**2", {"w": 1.0}, {"c": np.array([1.0 + 1e-10])}, steps=1, optimizer="sgd", lr=0.5)
    assert r.dtype == np.float64
    assert float(r.params["w"]) - 1.0 == pytest.approx(1e-10, rel=1e-4)
    assert not jax.config.jax_enable_x64  # the global configuration is untouched


# ---------------------------------------------------------------- bad input


def test_bad_input_errors():
    data = line_data()
    p = {"w": 0.0, "b": 0.0}
    with pytest.raises(sd.ShapeError, match="same number of rows; x has 40, y has 39"):
        quiet(LINE, p, {"x": data["x"], "y": data["y"][:-1]})
    with pytest.raises(sd.SymdiffError, match="parameter 'c' does not occur in the loss"):
        quiet(LINE, {**p, "c": 1.0}, data)
    with pytest.raises(sd.SymdiffError, match="data array 'z' does not occur"):
        quiet(LINE, p, {**data, "z": data["x"]})
    with pytest.raises(sd.SymdiffError, match="'y', which is neither a parameter nor a data array"):
        quiet(LINE, p, {"x": data["x"]})
    bad = data["y"].copy()
    bad[7] = np.nan
    with pytest.raises(sd.SymdiffError, match=r"data array 'y' contains NaN or infinity \(row 7\)"):
        quiet(LINE, p, {"x": data["x"], "y": bad})
    with pytest.raises(sd.SymdiffError, match="initial value of parameter 'w' contains NaN"):
        quiet(LINE, {"w": float("nan"), "b": 0.0}, data)
    with pytest.raises(sd.ShapeError, match="same number of dimensions"):
        quiet(LINE, p, {"x": data["x"], "y": data["y"][:, None]})
    with pytest.raises(sd.ShapeError, match="do not broadcast"):
        quiet(LINE, {"w": np.zeros(3), "b": 0.0}, data)
    with pytest.raises(sd.SymdiffError, match="both as a parameter and as data"):
        quiet(LINE, {**p, "x": 1.0}, data)
    with pytest.raises(sd.SymdiffError, match="one scalar expression"):
        quiet([LINE, LINE], p, data)
    with pytest.raises(sd.SymdiffError, match="batch_size needs data"):
        quiet(ROSENBROCK, {"a": 0.0, "b": 0.0}, {}, batch_size=4)
    with pytest.raises(sd.SymdiffError, match="steps must be a positive integer"):
        quiet(LINE, p, data, steps=0)
    with pytest.raises(sd.SymdiffError, match="params must be a non-empty dict"):
        quiet(LINE, {}, data)
    with pytest.raises(sd.SymdiffError, match="must be real numbers"):
        quiet(LINE, p, {"x": ["a"] * 40, "y": data["y"]})
    with pytest.raises(sd.ParseError):
        quiet("(w*x + ", p, data)
    with pytest.raises(sd.DeviceError, match="xla_force_host_platform_device_count"):
        quiet(LINE, p, data, devices=len(jax.devices()) + 1)


def test_loss_becoming_nan_stops_early_with_last_finite_params():
    # log(x) from x=1 with sgd lr=0.5: x = 1 -> 0.5 -> -0.5 (NaN): stop, keep x = 0.5
    with pytest.warns(FitWarning, match="became NaN/infinite at step 2"):
        r = quiet("log(x)", {"x": 1.0}, {}, steps=50, optimizer="sgd", lr=0.5)
    assert r.stopped_early and r.steps == 2 and r.steps_requested == 50
    assert float(r.params["x"]) == 0.5
    assert np.all(np.isfinite(r.loss_history)) and len(r.loss_history) == 2
    assert r.loss == pytest.approx(np.log(0.5))
    assert "stopped early" in repr(r)


def test_divergence_with_data_stops_early_never_nan():
    data = line_data()
    with pytest.warns(FitWarning):
        r = quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=400, optimizer="sgd", lr=5.0)  # diverges to inf
    assert np.all(np.isfinite(list(r.params.values())))
    assert np.isfinite(r.loss) and np.all(np.isfinite(r.loss_history))


def test_non_finite_initial_loss_is_an_error():
    with pytest.raises(FitError, match="not finite at the initial parameters"):
        quiet("log(x)", {"x": -1.0}, {}, steps=5, optimizer="sgd")


def test_no_warning_on_a_clean_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=10)


# ---------------------------------------------------------------- plots


def test_plot_loss_curve_and_fitted_curve(tmp_path):
    from matplotlib.figure import Figure

    r = quiet(LINE, {"w": 0.0, "b": 0.0}, line_data(), steps=20, optimizer="lbfgs")
    fig = r.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_ax, data_ax = fig.axes
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), r.loss_history)
    assert len(data_ax.lines) == 2  # data points and the fitted curve
    fig.savefig(tmp_path / "fit.png")
    assert (tmp_path / "fit.png").stat().st_size > 1000
    # plain minimisation: the loss curve alone
    r = quiet(ROSENBROCK, {"a": -1.2, "b": 1.0}, {}, steps=10, optimizer="adam")
    assert len(r.plot().axes) == 1


# ---------------------------------------------------------------- devices


def test_devices_list_of_one_device_matches_default():
    data = line_data(n=30)
    a = quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=20, optimizer="adam", lr=0.05)
    b = quiet(LINE, {"w": 0.0, "b": 0.0}, data, steps=20, optimizer="adam", lr=0.05, devices=[jax.devices()[0]])
    np.testing.assert_allclose(a.loss_history, b.loss_history, rtol=1e-6)
    with pytest.raises(sd.DeviceError):
        quiet(LINE, {"w": 0.0, "b": 0.0}, data, devices="tpu:7")


MULTI_DEVICE_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from jax.sharding import PartitionSpec as P
    from symdiff._fit import fit
    assert len(jax.devices()) == 4, jax.devices()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(REPLACE_N, 1)).astype(np.float32)
    y = (x * np.array([[2.0]]) + 1 + 0.1 * rng.normal(size=(REPLACE_N, 1))).astype(np.float32)
    data = {"x": x, "y": y}
    for bs in (None, 8):
        kw = dict(steps=30, optimizer="adam", lr=0.1, batch_size=bs, progress=False, seed=4)
        one = fit("(w*x + b - y)**2", {"w": 0.0, "b": 0.0}, data, **kw)
        four = fit("(w*x + b - y)**2", {"w": 0.0, "b": 0.0}, data, devices=4, **kw)
        np.testing.assert_allclose(four.loss_history, one.loss_history, rtol=2e-5, atol=1e-6)
        for name in ("w", "b"):
            np.testing.assert_allclose(four.params[name], one.params[name], rtol=2e-5, atol=1e-6)
        assert len(four.devices) == 4 and one.devices is None
        assert four.data_sharding.spec == P("data") and len(four.data_sharding.device_set) == 4
        for name, arr in four._placed_data.items():
            shards = arr.addressable_shards
            assert len(shards) == 4 and len({s.device for s in shards}) == 4
            rows = -(-REPLACE_N // 4)
            assert all(s.data.shape == (rows, 1) for s in shards), [s.data.shape for s in shards]
    # an explicit device list is the same mesh: the compiled fit is reused
    r = fit("(w*x + b - y)**2", {"w": 0.0, "b": 0.0}, data, devices=jax.devices()[::-1], **kw)
    assert len(r.devices) == 4 and r.data_sharding.spec == P("data")
    np.testing.assert_allclose(r.loss_history, one.loss_history, rtol=2e-5, atol=1e-6)
    print("MULTI-DEVICE OK")
    """
)


@pytest.mark.parametrize("n_rows", [50])  # 50 rows over 4 devices: padded to 52 with masked rows
def test_four_simulated_devices_match_one_device(n_rows):
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    script = MULTI_DEVICE_SCRIPT.replace("REPLACE_N", str(n_rows))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MULTI-DEVICE OK" in out.stdout


# ---------------------------------------------------------------- the example


def test_curve_fit_example_quick(tmp_path, capsys):
    out = tmp_path / "curve.png"
    module = runpy.run_path(os.path.join(ROOT, "examples", "curve_fit.py"), run_name="curve_fit_example")
    assert module["main"](["--quick", "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fitted formula: y = 2.0" in text and "exp(" in text and "cos(" in text
    assert "d/dA = " in text
    assert out.stat().st_size > 10_000
