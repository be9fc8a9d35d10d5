"""kexue AdaFactor vs an independent float64 numpy transcription of the post / mesh-tf update.

The reference below shares no code with the implementation: it uses the post's SUM formula
``v̂_ij = v^r_i v^c_j / Σ_j v^c_j`` (the implementation uses means and normalises the row stat), and
the factored axes are written out by hand for each shape.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from kexue.training.adafactor import AdaFactor, factored_axes
from kexue.training.config import OptimizerConfig
from kexue.training.optim import build_optimizer


def reference_adafactor(theta0, grads, *, lr, beta1=0.0, beta2=None, eps1=1e-30, eps2=1e-3, d=1.0,
                        scale=True, axes=None, wd=0.0):
    """Plain float64 AdaFactor; ``axes = (largest, second_largest)`` or None (unfactored)."""
    theta = np.array(theta0, dtype=np.float64)
    vr = vc = v = None
    m = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, dtype=np.float64)
        b2 = 1.0 - t ** (-0.8) if beta2 is None else beta2
        if lr is None:
            alpha = min(1e-2, 1.0 / math.sqrt(t)) * (1.0 if scale else 0.05)
        else:
            alpha = lr
        G = g * g + eps1
        if axes is None:
            v = (1 - b2) * G if v is None else b2 * v + (1 - b2) * G
            vhat = v
        else:
            j_axis, i_axis = axes  # j: largest (columns), i: second largest (rows)
            r_new, c_new = G.sum(axis=j_axis, keepdims=True), G.sum(axis=i_axis, keepdims=True)
            vr = (1 - b2) * r_new if vr is None else b2 * vr + (1 - b2) * r_new
            vc = (1 - b2) * c_new if vc is None else b2 * vc + (1 - b2) * c_new
            vhat = vr * vc / vc.sum(axis=j_axis, keepdims=True)
        u = g / np.sqrt(vhat)
        if d is not None:
            u = u / max(1.0, np.sqrt(np.mean(u * u)) / d)
        if beta1 > 0:
            m = beta1 * m + (1 - beta1) * u
            u = m
        if scale:
            u = u * max(eps2, np.sqrt(np.mean(theta * theta)))
        theta = theta - alpha * u - alpha * wd * theta
    return theta


def run_kexue(theta0, grads, **kw):
    p = nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    opt = AdaFactor([p], **kw)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach().numpy(), opt


# shape, min_dim_size_to_factor, hand-written (largest, second) axes or None
SHAPES = {
    "matrix_130x140": ((130, 140), 128, (1, 0)),
    "tensor_150x3x140": ((150, 3, 140), 128, (0, 2)),  # factors axes 0 and 2, not the last two
    "small_matrix": ((20, 30), 128, None),
    "vector": ((50,), 128, None),
}


def make_problem(shape, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    theta0 = rng.normal(size=shape) * 0.05
    # varying scales (incl. a jump at step 3) so that clipping is active on some steps only
    scales = [1.0, 0.3, 5.0, 1.0, 0.01, 2.0][:steps]
    grads = [rng.normal(size=shape) * s * (1 + rng.random(size=shape)) for s in scales]
    return theta0, grads


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("beta1", [0.0, 0.9])
@pytest.mark.parametrize("scale", [True, False])
def test_matches_independent_reference(name, beta1, scale):
    shape, min_dim, axes = SHAPES[name]
    theta0, grads = make_problem(shape)
    got, _ = run_kexue(theta0, grads, lr=1e-2, beta1=beta1, multiply_by_parameter_scale=scale,
                       min_dim_size_to_factor=min_dim)
    want = reference_adafactor(theta0, grads, lr=1e-2, beta1=beta1, scale=scale, axes=axes)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)
    assert not np.allclose(got, theta0)  # the update did something


@pytest.mark.parametrize("kw,ref_kw", [
    (dict(lr=None), dict(lr=None)),                                               # relative step
    (dict(lr=None, multiply_by_parameter_scale=False), dict(lr=None, scale=False)),  # ×0.05
    (dict(lr=3e-2, beta2=0.99), dict(lr=3e-2, beta2=0.99)),                        # constant decay
    (dict(lr=1e-2, weight_decay=0.1, beta1=0.5), dict(lr=1e-2, wd=0.1, beta1=0.5)),
    (dict(lr=1e-2, clipping_threshold=None), dict(lr=1e-2, d=None)),
    (dict(lr=1e-2, epsilon2=0.5), dict(lr=1e-2, eps2=0.5)),                        # ε2 floor active
])
@pytest.mark.parametrize("name", ["matrix_130x140", "vector"])
def test_flags_match_reference(kw, ref_kw, name):
    shape, min_dim, axes = SHAPES[name]
    theta0, grads = make_problem(shape, seed=1)
    got, _ = run_kexue(theta0, grads, min_dim_size_to_factor=min_dim, **kw)
    want = reference_adafactor(theta0, grads, axes=axes, **ref_kw)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)


def test_factored_axes_threshold_and_ties():
    assert factored_axes((130, 140), 128) == (1, 0)
    assert factored_axes((150, 3, 140), 128) == (0, 2)
    assert factored_axes((3, 200, 150), 128) == (1, 2)
    assert factored_axes((128, 128), 128) == (0, 1)           # ties: earlier axis is "largest"
    assert factored_axes((200, 200, 200), 128) == (0, 1)
    assert factored_axes((127, 5000), 128) is None            # second-largest dim decides
    assert factored_axes((5000, 127, 3), 128) is None
    assert factored_axes((5000,), 1) is None


def test_rank_one_second_moment_is_recovered_exactly():
    """If every g² has the same rank-1 profile, the factored v̂ equals the full EMA of g²."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=130), rng.normal(size=140)
    theta0 = rng.normal(size=(130, 140))
    grads = [c * np.outer(a, b) for c in (1.0, -3.0, 0.5, 2.0)]
    kw = dict(lr=1.0, epsilon1=0.0, clipping_threshold=None, multiply_by_parameter_scale=False)
    factored, opt = run_kexue(theta0, grads, min_dim_size_to_factor=128, **kw)
    full, _ = run_kexue(theta0, grads, min_dim_size_to_factor=10_000, **kw)
    assert "exp_avg_sq_row" in opt.state[opt.param_groups[0]["params"][0]]
    np.testing.assert_allclose(factored, full, rtol=1e-12, atol=1e-12)
    # step 1 (β̂2 = 0): u = g / |g| exactly
    one, _ = run_kexue(theta0, grads[:1], min_dim_size_to_factor=128, **kw)
    np.testing.assert_allclose(theta0 - one, np.sign(grads[0]), rtol=0, atol=1e-12)


def test_vector_path_equals_rmsprop_with_schedule():
    """1-D AdaFactor (no clip/scale/ε1) == torch RMSprop with alpha = β̂2_t set before each step."""
    rng = np.random.default_rng(3)
    theta0 = rng.normal(size=64)
    grads = [rng.normal(size=64) * s for s in (1.0, 2.0, 0.1, 1.0, 3.0)]
    got, _ = run_kexue(theta0, grads, lr=1e-2, epsilon1=0.0, clipping_threshold=None,
                       multiply_by_parameter_scale=False)
    p = nn.Parameter(torch.tensor(theta0))
    rms = torch.optim.RMSprop([p], lr=1e-2, alpha=0.0, eps=0.0)
    for t, g in enumerate(grads, start=1):
        rms.param_groups[0]["alpha"] = 1.0 - t ** -0.8
        p.grad = torch.tensor(g)
        rms.step()
    np.testing.assert_allclose(got, p.detach().numpy(), rtol=1e-12, atol=1e-14)


def _step_deltas(theta0, grads, **kw):
    """Per-step updates θ_{t-1} - θ_t of kexue AdaFactor."""
    p = nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    opt = AdaFactor([p], **kw)
    deltas = []
    for g in grads:
        before = p.detach().clone()
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        deltas.append((before - p.detach()).numpy())
    return deltas


@pytest.mark.parametrize("name", ["matrix_130x140", "vector"])
def test_clipping_activates_only_above_threshold(name):
    shape, min_dim, _ = SHAPES[name]
    theta0, grads = make_problem(shape, seed=4)
    # lr=1 and no parameter scale: the step is exactly the (clipped) u, and v does not depend on θ
    base = dict(lr=1.0, multiply_by_parameter_scale=False, min_dim_size_to_factor=min_dim)
    raw = _step_deltas(theta0, grads, clipping_threshold=None, **base)
    rms = [float(np.sqrt(np.mean(r * r))) for r in raw]
    assert max(rms) > 1.05 and min(rms) < 0.95    # the gradient jumps make both cases occur
    # d above every RMS(u): bit-identical to no clipping
    hi = _step_deltas(theta0, grads, clipping_threshold=1.01 * max(rms), **base)
    assert all(np.array_equal(a, b) for a, b in zip(hi, raw))
    # d = 1: steps with RMS(u) <= 1 untouched, the others rescaled to RMS exactly d
    clipped = _step_deltas(theta0, grads, clipping_threshold=1.0, **base)
    for c, r, s in zip(clipped, raw, rms):
        if s <= 1.0:
            np.testing.assert_allclose(c, r, rtol=1e-12, atol=1e-15)
        else:
            np.testing.assert_allclose(c, r / s, rtol=1e-12, atol=1e-15)  # deltas of θ: atol
            assert np.sqrt(np.mean(c * c)) == pytest.approx(1.0, rel=1e-12)


def test_clipping_is_noop_when_rms_at_or_below_d():
    """Step 1 on a vector gives u = sign(g) (RMS exactly 1): d=1 must leave it untouched."""
    theta0 = np.zeros(10)
    g = np.linspace(-2.0, 3.0, 10) + 0.01
    clipped, _ = run_kexue(theta0, [g], lr=1.0, clipping_threshold=1.0, epsilon1=0.0,
                           multiply_by_parameter_scale=False)
    np.testing.assert_allclose(clipped, -np.sign(g), rtol=0, atol=1e-15)
    half, _ = run_kexue(theta0, [g], lr=1.0, clipping_threshold=0.5, epsilon1=0.0,
                        multiply_by_parameter_scale=False)
    np.testing.assert_allclose(half, -0.5 * np.sign(g), rtol=0, atol=1e-15)


def test_state_is_sublinear_for_factored_matrices():
    def numel(opt):
        return sum(v.numel() for s in opt.state.values() for v in s.values() if torch.is_tensor(v))

    for beta1, want in ((0.0, 130 + 140), (0.9, 130 + 140 + 130 * 140)):
        _, opt = run_kexue(*make_problem((130, 140), steps=1), beta1=beta1)
        assert numel(opt) == want
    _, opt = run_kexue(*make_problem((150, 3, 140), steps=1))
    assert numel(opt) == 3 * 140 + 150 * 3          # (1, 3, 140) + (150, 3, 1)
    _, opt = run_kexue(*make_problem((20, 30), steps=1))
    assert numel(opt) == 600                         # unfactored below the threshold
    _, opt = run_kexue(*make_problem((50,), steps=1))
    assert numel(opt) == 50


def test_lr_scheduler_halving_halves_the_update():
    theta0, grads = make_problem((130, 140), steps=1, seed=5)
    ps = [nn.Parameter(torch.tensor(theta0)) for _ in range(2)]
    opts = [AdaFactor([p], lr=1e-2) for p in ps]
    sched = torch.optim.lr_scheduler.LambdaLR(opts[1], lambda step: 0.5)
    assert opts[1].param_groups[0]["lr"] == pytest.approx(5e-3)
    for p, opt in zip(ps, opts):
        p.grad = torch.tensor(grads[0])
        opt.step()
    sched.step()
    full = theta0 - ps[0].detach().numpy()
    half = theta0 - ps[1].detach().numpy()
    np.testing.assert_allclose(half, 0.5 * full, rtol=1e-12, atol=1e-16)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 130), nn.Tanh(), nn.Linear(130, 140), nn.Tanh(),
                         nn.Linear(140, 3))


def _train(model, opt, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 16, generator=gen)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()


def test_state_dict_resume_is_exact():
    full_model = _model()
    full_opt = AdaFactor(full_model.parameters(), lr=1e-2, beta1=0.9, weight_decay=0.01)
    _train(full_model, full_opt, 3, seed=10)
    _train(full_model, full_opt, 2, seed=11)

    model = _model()
    opt = AdaFactor(model.parameters(), lr=1e-2, beta1=0.9, weight_decay=0.01)
    _train(model, opt, 3, seed=10)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    resumed = _model()
    resumed.load_state_dict(ckpt["model"])
    new_opt = AdaFactor(resumed.parameters(), lr=1e-2, beta1=0.9, weight_decay=0.01)
    new_opt.load_state_dict(ckpt["opt"])
    assert new_opt.state[resumed[2].weight]["step"] == 3
    assert new_opt.state[resumed[2].weight]["exp_avg_sq_row"].shape == (1, 130)  # weight (140, 130)
    _train(resumed, new_opt, 2, seed=11)
    for a, b in zip(full_model.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_params_use_fp32_state_and_math(dtype):
    theta0, grads = make_problem((130, 140), steps=3, seed=6)
    p = nn.Parameter(torch.tensor(theta0, dtype=dtype))
    opt = AdaFactor([p], lr=1e-2, beta1=0.9)
    q = nn.Parameter(p.detach().float().clone())  # fp32 twin, rounded to dtype after each step
    twin = AdaFactor([q], lr=1e-2, beta1=0.9)
    for g in grads:
        p.grad = torch.tensor(g, dtype=dtype)
        q.grad = p.grad.float()
        opt.step()
        twin.step()
        with torch.no_grad():
            q.copy_(q.to(dtype).float())
        assert p.dtype == dtype
        assert torch.equal(p.float(), q)
    assert all(v.dtype == torch.float32 for v in opt.state[p].values() if torch.is_tensor(v))
    reloaded = AdaFactor([p], lr=1e-2, beta1=0.9)
    reloaded.load_state_dict(opt.state_dict())                   # torch would cast state to dtype
    for k, v in opt.state[p].items():
        if torch.is_tensor(v):
            assert reloaded.state[p][k].dtype == torch.float32
            assert torch.equal(reloaded.state[p][k], v)


def test_sparse_embedding_gradients_are_densified():
    weights = []
    for sparse in (False, True):
        torch.manual_seed(0)
        emb = nn.Embedding(300, 130, sparse=sparse)
        init = emb.weight.detach().clone()
        opt = AdaFactor(emb.parameters(), lr=1e-2)
        for step in range(3):
            ids = torch.tensor([[1, 5, 5, 7], [299, 0, step, 1]])
            opt.zero_grad()
            emb(ids).pow(2).sum().backward()
            assert emb.weight.grad.is_sparse == sparse
            opt.step()
        weights.append(emb.weight.detach().clone())
        assert "exp_avg_sq_row" in opt.state[emb.weight]   # (300, 130) is factored
        moved = (weights[-1] != init).any(dim=1)
        assert moved[[0, 1, 2, 5, 7, 299]].all() and not moved[[3, 4, 100]].any()  # g = 0 -> u = 0
    torch.testing.assert_close(weights[1], weights[0], rtol=1e-6, atol=1e-7)


def test_build_optimizer_from_config():
    params = [nn.Parameter(torch.zeros(130, 140))]
    opt = build_optimizer(OptimizerConfig(name="adafactor", lr=2e-3, weight_decay=0.01,
                                          kwargs={"beta1": 0.9}), params)
    assert isinstance(opt, AdaFactor)
    group = opt.param_groups[0]
    assert (group["lr"], group["beta1"], group["weight_decay"]) == (2e-3, 0.9, 0.01)
    params[0].grad = torch.ones(130, 140)
    opt.step()  # zero params: the ε2 floor lets them move
    # u = 1, m = (1 - 0.9)·1, scale = max(ε2, RMS(0)) = 1e-3: θ = -lr · 0.1 · 1e-3
    torch.testing.assert_close(params[0].detach(), torch.full((130, 140), -2e-3 * 0.1 * 1e-3))


@pytest.mark.parametrize("kw", [dict(beta1=1.0), dict(beta2=1.5), dict(lr=-1.0),
                                dict(clipping_threshold=0.0), dict(min_dim_size_to_factor=0)])
def test_invalid_arguments_fail_fast(kw):
    with pytest.raises(ValueError, match="AdaFactor"):
        AdaFactor([nn.Parameter(torch.zeros(3))], **kw)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    theta0, grads = make_problem((150, 3, 140), steps=4, seed=7)
    out = []
    for device in ("cpu", "cuda"):
        p = nn.Parameter(torch.tensor(theta0, dtype=torch.float32, device=device))
        opt = AdaFactor([p], lr=1e-2, beta1=0.9, weight_decay=0.01)
        for g in grads:
            p.grad = torch.tensor(g, dtype=torch.float32, device=device)
            opt.step()
        out.append(p.detach().cpu())
    torch.testing.assert_close(out[1], out[0], rtol=1e-5, atol=1e-6)


def test_momentum_is_placed_as_in_su_not_as_in_mesh_tensorflow() -> None:
    """Su: m = b1 m + (1-b1) clip(u), then theta -= lr * max(eps2, RMS(theta)) * m.
    mesh-tensorflow / HF: m = b1 m + (1-b1) lr * scale * clip(u), then theta -= m.
    Both by hand in float64 over 3 steps (RMS(theta) changes between steps, so they differ)."""
    from kexue.training import AdaFactor

    g = torch.Generator().manual_seed(3)
    theta0 = torch.randn(4, 3, dtype=torch.float64, generator=g)
    grads = [torch.randn(4, 3, dtype=torch.float64, generator=g) for _ in range(3)]
    lr, b1, eps1, eps2, d = 0.1, 0.9, 1e-30, 1e-3, 1.0

    def rms(x):
        return x.pow(2).mean().sqrt()

    def hand(mesh: bool) -> torch.Tensor:
        theta, v, m = theta0.clone(), torch.zeros_like(theta0), torch.zeros_like(theta0)
        for t, grad in enumerate(grads, start=1):
            beta2 = 1 - t ** -0.8
            v = beta2 * v + (1 - beta2) * (grad ** 2 + eps1)     # 4x3: not factored
            u = grad / v.sqrt()
            u = u / torch.clamp(rms(u) / d, min=1.0)
            scale = torch.clamp(rms(theta), min=eps2)
            if mesh:
                m = b1 * m + (1 - b1) * lr * scale * u
                theta = theta - m
            else:
                m = b1 * m + (1 - b1) * u
                theta = theta - lr * scale * m
        return theta

    p = torch.nn.Parameter(theta0.clone())
    opt = AdaFactor([p], lr=lr, beta1=b1)
    for grad in grads:
        p.grad = grad.clone()
        opt.step()
    su, mesh = hand(mesh=False), hand(mesh=True)
    assert (su - mesh).abs().max() > 1e-6                      # the placements do differ
    torch.testing.assert_close(p.detach(), su, rtol=0, atol=1e-12)
    import kexue.training.adafactor as mod
    assert "mesh-tensorflow (and HF) apply it AFTER" in " ".join(mod.__doc__.split())
