"""The engines' matrix products: oneDNN or BLAS, the same numbers to float32 rounding, and every engine that
uses oneDNN still agrees with the autograd reference (which runs on ``mm``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from rnnkit import gemm


@pytest.mark.parametrize("shape", [(3, 5, 4), (64, 256, 1024)])  # below and above ONEDNN_MIN_MACS
def test_matmul_is_a_at_b_plus_a_bias_or_a_matrix(shape):
    M, K, N = shape
    torch.manual_seed(0)
    a, b = torch.randn(M, K), torch.randn(K, N)
    bias, other = torch.randn(N), torch.randn(M, N)
    tolerance = {"atol": 1e-4 * K**0.5, "rtol": 1e-5}
    torch.testing.assert_close(gemm.matmul(a, b), a @ b, **tolerance)
    torch.testing.assert_close(gemm.matmul(a, b, bias), a @ b + bias, **tolerance)
    torch.testing.assert_close(gemm.matmul(a, b, other), a @ b + other, **tolerance)
    torch.testing.assert_close(gemm.matmul(a, b.t().contiguous().t()), a @ b, **tolerance)  # b with any strides


def test_matmul_keeps_autograd_and_other_dtypes_on_torch():
    a = torch.randn(64, 256, requires_grad=True)
    b = torch.randn(256, 1024)
    out = gemm.matmul(a, b)
    assert out.grad_fn is not None  # oneDNN's op has no derivative: mm ran
    out.sum().backward()
    torch.testing.assert_close(a.grad, b.sum(1).expand(64, 256), atol=1e-4, rtol=1e-5)
    a64, b64 = a.detach().double(), b.double()
    assert torch.equal(gemm.matmul(a64, b64), a64 @ b64)


@pytest.mark.parametrize("rows", [64, 50, 16, 1])  # the batch a layer's steps shrink to with shorter sequences
def test_a_prepacked_weight_gives_the_plain_weights_product_at_any_number_of_rows(rows):
    torch.manual_seed(0)
    b = torch.randn(1024, 256).t()  # W_hh^T as the fused engine's forward steps read it
    packed = gemm.prepack(b, 64)
    if gemm.kernel() == "onednn":
        assert isinstance(packed, gemm.Prepacked) and packed.plain is b
    a, add = torch.randn(rows, 256), torch.randn(rows, 1024)
    tolerance = {"atol": 1e-4 * 256**0.5, "rtol": 1e-5}
    torch.testing.assert_close(gemm.matmul(a, packed, add), a @ b + add, **tolerance)
    torch.testing.assert_close(gemm.matmul(a, packed), gemm.matmul(a, b), **tolerance)


def test_prepack_leaves_what_onednn_does_not_run_as_it_is():
    small, wide = torch.randn(5, 4), torch.randn(256, 1024)
    assert gemm.prepack(small, 3) is small  # under ONEDNN_MIN_MACS
    assert gemm.prepack(wide.double(), 64).dtype == torch.float64  # float64 runs on the BLAS
    assert not isinstance(gemm.prepack(wide.double(), 64), gemm.Prepacked)
    leaf = wide.clone().requires_grad_()
    assert gemm.prepack(leaf, 64) is leaf  # the reference engine's autograd needs mm


def _run(script: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_rnnkit_gemm_blas_switches_onednn_off():
    assert _run("from rnnkit import gemm; print(gemm.kernel())", RNNKIT_GEMM="blas") == "blas"


def test_with_every_product_on_onednn_the_fused_and_compiled_engines_match_the_reference():
    """RNNKIT_GEMM=onednn puts every float32 product outside autograd on oneDNN, however small (in the Python
    steps, the input projection, dL/dx and, with RNNKIT_LOOPS_BLAS=1 taking them off brgemm, the compiled loops'
    per-step GEMMs), so that these small layers run the path that large ones take: outputs and all gradients
    equal the autograd reference's (on mm)."""
    script = """
        import json, torch, rnnkit
        from rnnkit import gemm
        from rnnkit.engine import compiled
        worst = {}
        for cell in ("rnn_tanh", "lstm", "lstm_peephole", "lstm_cifg", "gru", "gru_v1", "lstm_layernorm"):
            results = {}
            for backend in ("reference", "fused", "compiled"):
                torch.manual_seed(0)
                layer = rnnkit.Recurrent(cell, 5, 6, num_layers=2, bidirectional=True, backend=backend)
                x = torch.randn(3, 7, 5, requires_grad=True)
                out, state = layer(x, lengths=torch.tensor([7, 3, 5]))
                h = state[0] if isinstance(state, tuple) else state
                (out.square().sum() + h.sum()).backward()
                results[backend] = [out, x.grad] + [p.grad for p in layer.parameters()]
            worst[cell] = max(
                ((a - r).abs().max() / r.abs().max()).item()
                for backend in ("fused", "compiled") for a, r in zip(results[backend], results["reference"])
            )  # relative to the largest entry of each tensor
        print(json.dumps({"kernel": gemm.kernel(), "loops": compiled.load_loops() is not None, "worst": worst}))
    """
    report = json.loads(_run(script, RNNKIT_GEMM="onednn", RNNKIT_LOOPS_BLAS="1"))
    if report["kernel"] != "onednn":
        pytest.skip("this torch has no working oneDNN matmul")
    assert report["loops"], "the compiled loops did not build"
    # the layer-norm LSTM amplifies float32 rounding: 2-3e-5 of its largest gradient on BLAS as on oneDNN
    assert max(report["worst"].values()) < 1e-4, report["worst"]
