"""The compiled loops: the build is cached per source, flags and CPU; without a compiler rnnkit warns once and
runs the Python loops; inputs the loops do not take (other dtypes) run the fused engine.  Their numbers are held
to the references in tests/cells/test_gradcheck.py and tests/test_layers.py (both parametrised over backends)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import rnnkit
from helpers import layer_inputs, make_layer
from rnnkit.engine import compiled


def test_the_build_name_keys_the_cache_by_source_flags_and_torch_version(monkeypatch):
    name = compiled.build_name()
    assert name.startswith("rnnkit_loops_") and name == compiled.build_name()
    monkeypatch.setattr(compiled, "build_flags", lambda: ["-O3"])
    assert compiled.build_name() != name  # other flags (another CPU): another build
    flags = [flag for flags in compiled.VECTOR_FLAGS.values() for flag in flags]
    assert not any(flag.startswith("-march") for flag in flags)  # built for what torch found, not "native"


def test_without_a_compiler_rnnkit_warns_once_and_runs_the_python_loops(tmp_path):
    script = textwrap.dedent("""
        import warnings, torch, rnnkit
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer = rnnkit.Recurrent("lstm_peephole", 3, 4)
            other = rnnkit.Recurrent("gru_v1", 3, 4)
            out, _ = layer(torch.randn(2, 5, 3))
            out.sum().backward()
        messages = [str(w.message) for w in caught if "compiled time loops" in str(w.message)]
        print(len(messages), layer.backend, other.backend)
        print(messages[0])
        print(layer.explain())
    """)
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "RNNKIT_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    count, explanation = result.stdout.splitlines()[0], result.stdout.splitlines()[2]
    assert count == "1 fused fused"  # one warning for the process, and both layers on the Python loops
    assert "could not be built" in result.stdout and "rnnkit loops" in result.stdout
    assert explanation.startswith("fused:") and "not compiled: the compiled loops could not be built" in explanation


def test_dtypes_the_loops_do_not_take_run_the_fused_engine_with_the_same_numbers():
    torch.manual_seed(0)
    layer = rnnkit.Recurrent("lstm_cifg", 3, 4, backend="compiled")
    x = torch.randn(2, 5, 3)
    expected, _ = layer(x)
    assert compiled.compiled_blocker(layer.cell, x.half()) is not None
    assert compiled.compiled_blocker(layer.cell, x) is None
    fused = rnnkit.Recurrent("lstm_cifg", 3, 4, backend="fused")
    fused.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fused(x)[0], expected, atol=1e-6, rtol=1e-5)


def test_a_subclass_of_a_builtin_cell_gets_no_compiled_loops():
    class Shifted(rnnkit.cells.CELLS["lstm_peephole"]):
        name = "shifted_peephole_test"

    layer = rnnkit.Recurrent(Shifted, 3, 4)
    assert layer.backend == "fused" and not compiled.has_kernel(layer.cell)


def test_the_aten_gemm_path_gives_the_gradients_of_the_direct_blas_path():
    """RNNKIT_LOOPS_ATEN_GEMM makes the loops call ATen's addmm instead of libtorch's BLAS (as where no BLAS
    symbol is found): the same float64 numbers, for a cell with every GEMM shape (GRU v1: split W_hh) and masks."""
    script = textwrap.dedent("""
        import torch, rnnkit
        from rnnkit.engine import compiled
        torch.manual_seed(0)
        layer = rnnkit.Recurrent("gru_v1", 3, 4, num_layers=2, recurrent_dropout=0.2, backend="compiled").double()
        x = torch.randn(3, 6, 3, dtype=torch.float64, requires_grad=True)
        out, h = layer(x, lengths=torch.tensor([6, 2, 4]))
        (out.square().sum() + h.sum()).backward()
        sums = [out.sum().item(), x.grad.sum().item()] + [p.grad.sum().item() for p in layer.parameters()]
        print(compiled.direct_blas(), repr(sums))
    """)
    results = []
    for extra in ({}, {"RNNKIT_LOOPS_ATEN_GEMM": "1"}):
        env = {**os.environ, **extra}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        results.append(result.stdout.split(" ", 1))
    (blas_direct, direct), (blas_aten, aten) = results
    assert blas_aten == "False" and blas_direct in ("True", "False")
    assert [round(v, 9) for v in ast.literal_eval(direct)] == [round(v, 9) for v in ast.literal_eval(aten)]


# ---------------------------------------------------------------------------------- blocks of sequences
# The loops give each thread a block of whole sequences for all the steps (loops.cpp, for_sequences). The
# tests above run at sizes too small to split (one block); these run where two threads share the batch.

SPLIT = {"batch": 16, "steps": 7, "hidden_size": 64}  # >= 64 x 64 multiply-adds per row and step: two blocks
SPLIT_LENGTHS = torch.tensor([7, 7, 6, 6, 5, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 1])


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_sequence_blocks_give_each_thread_whole_sequences_and_an_equal_share_of_rows(two_threads):
    ops = compiled.load_loops()
    assert list(ops.sequence_blocks([16] * 200, 4 * 64 * 64)) == [0, 8, 16]  # the small benchmark: 8 sequences each
    assert list(ops.sequence_blocks([16] * 10, 64)) == [0, 16]  # too little work per step to share: one block
    # lengths 32, 12 and six of 2 (56 rows): the longest sequence alone is more than half of them
    assert list(ops.sequence_blocks([8, 8] + [2] * 10 + [1] * 20, 10**5)) == [0, 1, 8]
    sizes = [int((SPLIT_LENGTHS > t).sum()) for t in range(SPLIT["steps"])]
    assert len(ops.sequence_blocks(sizes, SPLIT["hidden_size"] ** 2)) == 3  # the test below runs two blocks


@pytest.mark.parametrize("cell", sorted(name for name, cls in rnnkit.CELLS.items() if cls in compiled.KERNELS))
def test_two_threads_on_blocks_of_sequences_give_the_fused_engines_numbers(cell, two_threads):
    """float64, unequal lengths, recurrent dropout, both directions: outputs and every gradient to 1e-10."""
    results = []
    for backend in ("compiled", "fused"):
        torch.manual_seed(5)
        layer = make_layer(cell, backend, hidden_size=SPLIT["hidden_size"], num_layers=1, recurrent_dropout=0.2)
        x, state = layer_inputs(layer, batch=SPLIT["batch"], steps=SPLIT["steps"])
        out, final = layer(x, state if len(state) > 1 else state[0], SPLIT_LENGTHS)
        final = final if isinstance(final, tuple) else (final,)
        (out.square().sum() + sum(f.sum() for f in final)).backward()
        results.append([out, *final, x.grad, *(s.grad for s in state), *(p.grad for p in layer.parameters())])
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-9)


def test_the_brgemm_and_blas_paths_give_the_same_float32_numbers():
    """float32 per-step products run on oneDNN's brgemm where torch has it; RNNKIT_LOOPS_BLAS=1 runs them on the
    BLAS instead: the same numbers to float32 rounding, for every product shape (GRU v1 splits W_hh), two
    blocks of sequences and a dropout mask."""
    script = textwrap.dedent("""
        import torch, rnnkit
        from rnnkit.engine import compiled
        torch.set_num_threads(2)
        torch.manual_seed(0)
        results = [compiled.load_loops().brgemm_enabled()]
        for cell in ("gru_v1", "lstm_layernorm"):
            layer = rnnkit.Recurrent(cell, 5, 64, recurrent_dropout=0.2, backend="compiled")
            x = torch.randn(16, 7, 5, requires_grad=True)
            out, _ = layer(x, lengths=torch.tensor([7, 7, 6, 6, 5, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 1]))
            out.square().sum().backward()
            results += [out.sum().item(), x.grad.sum().item()] + [p.grad.sum().item() for p in layer.parameters()]
        print(repr(results))
    """)
    results = []
    for extra in ({}, {"RNNKIT_LOOPS_BLAS": "1"}):
        env = {**os.environ, **extra}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        results.append(ast.literal_eval(result.stdout.strip()))
    (brgemm, *default), (blas, *forced) = results
    assert blas is False and brgemm in (True, False)
    assert brgemm or torch.torch_version.TorchVersion(torch.__version__) < "2.5"  # where ATen has cpublas::brgemm
    torch.testing.assert_close(torch.tensor(default), torch.tensor(forced), rtol=1e-4, atol=1e-4)
