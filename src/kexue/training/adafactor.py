"""AdaFactor with the exact semantics of Su's ``bojone/adafactor`` (post 7302).

The second-moment statistics, ``β̂2`` schedule, factoring rule and update clipping match
mesh-tensorflow too; the momentum placement does NOT: Su applies ``β1`` to the clipped update
BEFORE parameter scaling and ``lr``, whereas mesh-tensorflow (and HF) apply it AFTER
``lr × max(ε2, RMS(θ))``. This implementation follows Su, as the spec asks.

Post: kexue.fm/archives/7302; paper: Shazeer & Stern 2018, arXiv:1804.04235.

Update for one tensor ``θ`` with gradient ``g`` at 1-based step ``t`` (Shazeer & Stern 2018)::

    β̂2_t = 1 - t^(-0.8)                       (beta2=None; β̂2_1 = 0, so no bias correction)
    G    = g² + ε1
    factored θ (m×n, row axis r = 2nd-largest, column axis c = largest):
        vr = β̂2 vr + (1-β̂2) mean_c G          # (m, 1)   row statistic
        vc = β̂2 vc + (1-β̂2) mean_r G          # (1, n)   column statistic
        v̂  = vr · vc / mean_r(vr)              # == (Σ_j)(Σ_i)/Σ_ij of the post's formula
    unfactored θ:  v̂ = v = β̂2 v + (1-β̂2) G
    u    = g / sqrt(v̂)
    u   /= max(1, RMS(u) / d)                   (update clipping, d = clipping_threshold)
    m    = β1 m + (1-β1) u ; u = m              (only when beta1 > 0; the CLIPPED u, before scaling)
    u   *= max(ε2, RMS(θ_{t-1}))                (multiply_by_parameter_scale)
    θ    = θ_{t-1} - lr·u  - lr·wd·θ_{t-1}      (decoupled weight decay, wd = 0 by default)

``RMS(x) = sqrt(mean(x²))`` over the whole tensor. Everything is computed per tensor with
vectorised torch ops and no host synchronisation (scalars stay 0-d tensors), so the same code
runs on CPU and CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def factored_axes(
    shape: tuple[int, ...] | torch.Size, min_dim_size_to_factor: int
) -> tuple[int, int] | None:
    """Axes ``(largest, second_largest)`` to factor over, or ``None`` for the unfactored path.

    A tensor is factored when it has ``ndim >= 2`` and its second-largest dimension is at least
    ``min_dim_size_to_factor``. Ties between equal sizes go to the EARLIER axis (a stable sort by
    decreasing size, as ``sorted(shape.dims, key=lambda d: -d.size)`` in mesh-tensorflow): a square
    matrix has ``largest = 0, second = 1``; ``(200, 200, 200)`` factors axes 0 and 1.
    """
    if len(shape) < 2:
        return None
    order = sorted(range(len(shape)), key=lambda i: -shape[i])  # stable: earlier axis wins ties
    largest, second = order[0], order[1]
    if shape[second] < min_dim_size_to_factor:
        return None
    return largest, second


def _rms(x: torch.Tensor) -> torch.Tensor:
    """0-d tensor ``sqrt(mean(x²))`` (no host sync)."""
    return torch.linalg.vector_norm(x) / math.sqrt(x.numel())


def _factored_sum_sq(
    g2: torch.Tensor, r2: torch.Tensor, c2: torch.Tensor, largest: int, second: int
) -> torch.Tensor:
    """``Σ g2·r2·c2`` (0-d) for keepdim factors: r2 is 1 on ``largest``, c2 on ``second``."""
    letters = [chr(ord("a") + i) for i in range(g2.dim())]
    full = "".join(letters)
    r_sub = "".join(x for i, x in enumerate(letters) if i != largest)
    c_sub = "".join(x for i, x in enumerate(letters) if i != second)
    return torch.einsum(f"{full},{r_sub},{c_sub}->", g2, r2.squeeze(largest), c2.squeeze(second))


class AdaFactor(torch.optim.Optimizer):
    """AdaFactor (Shazeer & Stern 2018) with Su's semantics (mesh-tensorflow's statistics;
    momentum placed as in Su's code, see the module docstring).

    Args:
        params: Parameters or parameter groups (every flag below may be set per group).
        lr: Learning rate ``α`` (default 1e-3, Su's advice even for fine-tuning). It is read from
            ``group["lr"]`` at every step, so LR schedulers work. ``None`` switches to Su's relative
            step ``α_t = min(1e-2, 1/sqrt(t))``, times 0.05 when ``multiply_by_parameter_scale`` is
            False; a relative step ignores schedulers (``LambdaLR`` cannot scale ``None``).
        beta1: Momentum on the clipped update, ``m = β1 m + (1-β1) u``, applied BEFORE parameter
            scaling. ``0`` (default) keeps no first moment at all (no extra state).
        beta2: ``None`` (default) uses the schedule ``β̂2_t = 1 - t^-0.8`` (t is the 1-based step,
            so the first step takes ``v = g² + ε1`` and needs no bias correction). A float is used
            as a CONSTANT decay with no bias correction (as in Su's code): the first step then sees
            ``v = (1-β2)(g²+ε1)``, a ``1/sqrt(1-β2)`` larger update that clipping tames.
        epsilon1: ``ε1`` added to ``g²`` before the statistics (keeps ``v > 0`` for zero grads).
            Factored tensors add it to the means (``mean(g²) + ε1``, equal in exact arithmetic and
            one full-size pass cheaper).
        epsilon2: ``ε2`` floor of the parameter scale ``max(ε2, RMS(θ))`` (lets zero-initialised
            tensors move).
        clipping_threshold: ``d`` of the update clipping ``u /= max(1, RMS(u)/d)``; ``None``
            disables it.
        multiply_by_parameter_scale: Multiply the update by ``max(ε2, RMS(θ_{t-1}))`` (relative,
            LAMB-like step size per tensor).
        min_dim_size_to_factor: Factor the second moment of a tensor with ``ndim >= 2`` only when
            its SECOND-LARGEST dimension is ``>=`` this; the two LARGEST axes are factored (not
            necessarily the last two, see :func:`factored_axes` for ties); any other axes are kept.
            An ``m×n`` matrix then stores ``m + n`` numbers instead of ``m·n``.
        weight_decay: Decoupled weight decay ``θ -= lr·wd·θ_{t-1}`` (AdamW style, uses the current
            ``lr``/relative step, not scaled by RMS(θ)). Su's reference has none inside (bert4keras
            wraps it with ``extend_with_weight_decay``); 0 by default.

    Gradients: sparse gradients (``nn.Embedding(sparse=True)``) are densified like the reference
    (so the whole embedding decays). fp16/bf16 parameters are updated in fp32 (state kept in fp32,
    also after ``load_state_dict``) and written back in their own dtype; fp64 stays fp64.

    Differences from ``torch.optim.Adafactor`` (torch >= 2.5):
        * torch has no ``beta1``/momentum; it always uses a relative step ``min(lr, 1/sqrt(t))``
          (``lr`` is only a cap) and always multiplies by ``max(ε2, RMS(θ))``. Here ``lr`` is the
          step itself and both behaviours are switches (``lr=None``,
          ``multiply_by_parameter_scale``).
        * torch factors EVERY tensor with ``ndim >= 2`` over its LAST TWO dims (no min-dim
          threshold); here only when the second-largest dim ``>= min_dim_size_to_factor``, over
          the two largest axes.
        * torch's ``eps1`` (default: dtype eps) is not added to ``g²``; it clamps the denominators
          (``R C / max(mean R, ε1)``, ``G / max(sqrt V, ε1)``). Here ``ε1 = 1e-30`` is added
          to ``g²``.
    Differences from HF ``transformers.Adafactor``:
        * HF defaults to ``relative_step=True`` (``lr=None``; ``warmup_init`` option) and then
          ignores external schedulers; here ``lr=1e-3`` is used directly (Su's setting ≈ HF
          ``Adafactor(lr=1e-3, relative_step=False, scale_parameter=True, beta1=None)``).
        * HF factors every ``ndim >= 2`` tensor over the last two dims (no threshold).
        * HF applies momentum AFTER the lr (and parameter) scaling, as mesh-tensorflow does;
          here before the parameter scale and lr, on the clipped update, as in Su's code.
        * HF also computes in fp32 for fp16/bf16 params; its weight decay is ``p -= wd·lr·p`` too.

    State per tensor: ``step`` (int), ``exp_avg_sq_row``/``exp_avg_sq_col`` (factored, kept with
    ``keepdim`` shapes) or ``exp_avg_sq`` (unfactored), and ``exp_avg`` when ``beta1 > 0``.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float | None = 1e-3,
        beta1: float = 0.0,
        beta2: float | None = None,
        epsilon1: float = 1e-30,
        epsilon2: float = 1e-3,
        clipping_threshold: float | None = 1.0,
        multiply_by_parameter_scale: bool = True,
        min_dim_size_to_factor: int = 128,
        weight_decay: float = 0.0,
    ) -> None:
        if lr is not None and not lr >= 0.0:
            raise ValueError(
                f"AdaFactor lr={lr!r}: use a float >= 0, or None for the relative step"
            )
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"AdaFactor beta1={beta1!r}: use 0 (no momentum) or a float in (0, 1)")
        if beta2 is not None and not 0.0 <= beta2 < 1.0:
            raise ValueError(
                f"AdaFactor beta2={beta2!r}: use None (1 - t^-0.8) or a float in [0, 1)"
            )
        if epsilon1 < 0.0 or epsilon2 < 0.0:
            raise ValueError(
                f"AdaFactor epsilon1={epsilon1!r}, epsilon2={epsilon2!r}: use floats >= 0"
            )
        if clipping_threshold is not None and not clipping_threshold > 0.0:
            raise ValueError(
                f"AdaFactor clipping_threshold={clipping_threshold!r}: "
                "use a float > 0, or None to disable clipping"
            )
        if min_dim_size_to_factor < 1:
            raise ValueError(
                f"AdaFactor min_dim_size_to_factor={min_dim_size_to_factor!r}: use an int >= 1"
            )
        if weight_decay < 0.0:
            raise ValueError(f"AdaFactor weight_decay={weight_decay!r}: use a float >= 0")
        defaults = dict(
            lr=lr, beta1=beta1, beta2=beta2, epsilon1=epsilon1, epsilon2=epsilon2,
            clipping_threshold=clipping_threshold,
            multiply_by_parameter_scale=multiply_by_parameter_scale,
            min_dim_size_to_factor=min_dim_size_to_factor, weight_decay=weight_decay,
        )
        super().__init__(params, defaults)

    @staticmethod
    def step_size(group: dict[str, Any], t: int) -> float:
        """``α_t``: ``group["lr"]``, or the relative step ``min(1e-2, 1/sqrt(t))`` if it is None."""
        if group["lr"] is not None:
            return float(group["lr"])
        rel = min(1e-2, 1.0 / math.sqrt(t))
        return rel if group["multiply_by_parameter_scale"] else rel * 0.05

    @staticmethod
    def decay_rate(group: dict[str, Any], t: int) -> float:
        """``β̂2_t``: ``1 - t^-0.8`` when ``beta2`` is None, else the constant ``beta2``."""
        return 1.0 - t ** -0.8 if group["beta2"] is None else float(group["beta2"])

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], dtype: torch.dtype) -> dict:
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            axes = factored_axes(p.shape, group["min_dim_size_to_factor"])
            if axes is None:
                state["exp_avg_sq"] = torch.zeros(p.shape, dtype=dtype, device=p.device)
            else:
                largest, second = axes
                row_shape, col_shape = list(p.shape), list(p.shape)
                row_shape[largest] = 1    # row stat: mean over the largest axis
                col_shape[second] = 1     # col stat: mean over the second-largest axis
                state["exp_avg_sq_row"] = torch.zeros(row_shape, dtype=dtype, device=p.device)
                state["exp_avg_sq_col"] = torch.zeros(col_shape, dtype=dtype, device=p.device)
        if group["beta1"] > 0.0 and "exp_avg" not in state:
            state["exp_avg"] = torch.zeros(p.shape, dtype=dtype, device=p.device)
        return state

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """Perform one AdaFactor update on every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.is_complex():
                    raise RuntimeError(
                        "AdaFactor does not support complex parameters; use torch.view_as_real"
                    )
                self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        grad = p.grad
        if grad.is_sparse:
            grad = grad.coalesce().to_dense()  # densify like the reference (_resource_apply_sparse)
        low = p.dtype in _LOW_PRECISION
        cdtype = torch.float32 if low else p.dtype
        g = grad.to(cdtype)
        theta = p.float() if low else p   # fp32 working copy for fp16/bf16, else in place
        state = self._init_state(p, group, cdtype)
        state["step"] += 1
        t = state["step"]
        if p.numel() == 0:
            return
        lr = self.step_size(group, t)
        beta2 = self.decay_rate(group, t)
        eps1 = group["epsilon1"]

        clip = group["clipping_threshold"]
        if "exp_avg_sq_row" in state:
            vr, vc = state["exp_avg_sq_row"], state["exp_avg_sq_col"]
            axes = factored_axes(p.shape, group["min_dim_size_to_factor"])
            assert axes is not None  # state layout was chosen from the same shape
            largest, second = axes
            g2 = torch.mul(g, g, out=self._scratch(g))
            # mean(g² + ε1) == mean(g²) + ε1: ε1 is added to the small statistics (saves a pass)
            vr.mul_(beta2).add_(g2.mean(dim=largest, keepdim=True).add_(eps1), alpha=1.0 - beta2)
            vc.mul_(beta2).add_(g2.mean(dim=second, keepdim=True).add_(eps1), alpha=1.0 - beta2)
            # 1/sqrt(v̂) = r_factor * c_factor with v̂ = vr·vc / mean_second(vr)
            r_factor = vr.div(vr.mean(dim=second, keepdim=True)).rsqrt_()
            c_factor = vc.rsqrt()
            # u = g·r·c is never materialised: RMS(u)² = Σ g² r² c² / N is a contraction (einsum
            # contracts it without a full-size temporary), and c is folded into the final scalars.
            if clip is not None:
                sum_u2 = _factored_sum_sq(g2, r_factor.square(), c_factor.square(), largest, second)
            u = torch.mul(g, r_factor, out=g2)                               # reuse the g² buffer
            col = c_factor
        else:
            v = state["exp_avg_sq"]
            v.mul_(beta2).add_((1.0 - beta2) * eps1).addcmul_(g, g, value=1.0 - beta2)
            u = torch.rsqrt(v, out=self._scratch(v)).mul_(g)
            if clip is not None:
                sum_u2 = torch.linalg.vector_norm(u).square()
            col = torch.ones((), dtype=cdtype, device=p.device)

        # the update is u * col * coef; coef stays a 0-d tensor to avoid host syncs (CUDA)
        coef = torch.ones((), dtype=cdtype, device=p.device)
        if clip is not None:
            coef = coef / (sum_u2.div(p.numel()).sqrt_() / clip).clamp_(min=1.0)
        if group["beta1"] > 0.0:
            m = state["exp_avg"]
            beta1 = group["beta1"]
            m.mul_(beta1).addcmul_(u, col * (coef * (1.0 - beta1)))   # m = β1 m + (1-β1) clip(u)
            u, col, coef = m, torch.ones_like(coef), torch.ones_like(coef)
        if group["multiply_by_parameter_scale"]:
            coef = coef * _rms(theta).clamp_(min=group["epsilon2"])  # RMS(θ_{t-1})
        if group["weight_decay"] != 0.0:
            theta.mul_(1.0 - lr * group["weight_decay"])
        theta.addcmul_(u, col * coef, value=-lr)
        if low:
            p.copy_(theta)

    def _scratch(self, like: torch.Tensor) -> torch.Tensor:
        """Uninitialised temporary shaped like ``like``.

        On CPU, one flat buffer per dtype (the size of the largest tensor seen, not part of the
        state dict) is reused: a fresh multi-MB allocation costs page faults that made the step
        ~5x slower per full-size pass. CUDA's caching allocator already reuses memory.
        """
        if like.device.type != "cpu":
            return torch.empty_like(like)
        buffers = self.__dict__.setdefault("_scratch_buffers", {})
        buf = buffers.get(like.dtype)
        if buf is None or buf.numel() < like.numel():
            buf = buffers[like.dtype] = torch.empty(like.numel(), dtype=like.dtype)
        return buf[: like.numel()].view(like.shape)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, keeping fp32 state for fp16/bf16 params (torch would down-cast it)."""
        saved_state = state_dict["state"]
        saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        params = [p for g in self.param_groups for p in g["params"]]
        super().load_state_dict(state_dict)
        for idx, p in zip(saved_ids, params):
            if idx not in saved_state:
                continue
            for key, value in saved_state[idx].items():
                if torch.is_tensor(value) and value.is_floating_point():
                    dtype = torch.float32 if p.dtype in _LOW_PRECISION else p.dtype
                    self.state[p][key] = value.to(device=p.device, dtype=dtype, copy=True)
