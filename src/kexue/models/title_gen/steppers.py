"""Next-token "steppers" the searches of :mod:`kexue.models.title_gen.beam` call each step.

A stepper hides HOW a step's probabilities are computed; the searches only do

    probs = stepper.probs(hyps)      # hyps (N, k, t), newest token last -> (N, k, V)
    ... beam step ...                 # -> origin (N, k): which old hypothesis each new one extends
    stepper.select(origin)            # reorder per-hypothesis state
    stepper.keep(index)               # drop finished examples

(the pair steppers take hypotheses (2, N, k, t) of both directions, L2R first, return pair
probabilities (2, N, own, other, V) and reorder with origin (2, N, k)). Two kinds:

* ``FullPrefix*``: the reference -- ``model.next_probs`` / ``model.pair_next_probs`` re-run the
  decoders over the whole prefix each step (any model with those methods, e.g. a table fake);
* ``Cached*``: :mod:`kexue.models.title_gen.incremental` -- only the newest token is fed, LSTM
  states and source / cross-attention keys are cached (needs a real ``Seq2Seq``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from kexue.models.title_gen import incremental, incremental_pair


def repeat_encoded(enc: dict[str, Any], times: int) -> dict[str, Any]:
    """Repeat every row of ``enc`` ``times`` times consecutively (row b -> b*times .. b*times+times-1)."""
    return {key: (v.repeat_interleave(times, dim=0) if isinstance(v, Tensor) else v)
            for key, v in enc.items()}


def select_rows(enc: dict[str, Any], keep: Tensor, per: int) -> dict[str, Any]:
    """Keep examples ``keep`` (indices into the current batch) of an enc repeated ``per`` times."""
    idx = (keep.view(-1, 1) * per + keep.new_tensor(range(per))).view(-1)
    return {key: (v.index_select(0, idx) if isinstance(v, Tensor) else v) for key, v in enc.items()}


class FullPrefixStepper:
    """One direction via ``model.next_probs(enc_k, prefixes (N*k, t), direction)``."""

    def __init__(self, model: Any, enc: dict[str, Tensor], direction: str, k: int) -> None:
        self.model, self.direction, self.k = model, direction, k
        self.enc = repeat_encoded(enc, k) if k > 1 else enc

    def probs(self, hyps: Tensor) -> Tensor:
        n, k, t = hyps.shape
        return self.model.next_probs(self.enc, hyps.reshape(n * k, t), self.direction).view(n, k, -1)

    def select(self, origin: Tensor) -> None:
        """Nothing to reorder: the whole prefix is re-run next step."""

    def keep(self, index: Tensor) -> None:
        self.enc = select_rows(self.enc, index, self.k)


class CachedStepper:
    """One direction of a baseline ``Seq2Seq``, incrementally (:func:`incremental.single_step`)."""

    def __init__(self, model: Any, enc: dict[str, Tensor], direction: str, k: int) -> None:
        self.model, self.direction = model, direction
        self.cache = incremental.start(model, enc, k, (direction,))

    def probs(self, hyps: Tensor) -> Tensor:
        return incremental.single_step(self.model, self.cache, self.direction, hyps[..., -1])

    def select(self, origin: Tensor) -> None:
        incremental.select(self.cache, self.direction, origin)

    def keep(self, index: Tensor) -> None:
        incremental.keep(self.cache, index)


class FullPrefixPairStepper:
    """Both directions via ``model.pair_next_probs(enc repeated k*k, yl, yr)``."""

    def __init__(self, model: Any, enc: dict[str, Tensor], k: int) -> None:
        self.model, self.k = model, k
        self.enc = repeat_encoded(enc, k * k) if k > 1 else enc

    def probs(self, hyps: Tensor) -> Tensor:
        """hyps (2, N, k, t) [L2R; R2L] -> (2, N, own, other, V)."""
        pl, pr = self.model.pair_next_probs(self.enc, hyps[0], hyps[1])  # (N, i, j, V) each
        return torch.stack([pl, pr.transpose(1, 2)])

    def select(self, origin: Tensor) -> None:
        """Nothing to reorder: the whole prefixes are re-run next step."""

    def keep(self, index: Tensor) -> None:
        self.enc = select_rows(self.enc, index, self.k * self.k)


class CachedPairStepper:
    """Both directions of a bidirectional ``Seq2Seq``, incrementally and fused
    (:func:`incremental_pair.pair_step`)."""

    def __init__(self, model: Any, enc: dict[str, Tensor], k: int) -> None:
        self.model = model
        self.cache = incremental_pair.start(model, enc, k)

    def probs(self, hyps: Tensor) -> Tensor:
        return incremental_pair.pair_step(self.model, self.cache, hyps)

    def select(self, origin: Tensor) -> None:
        incremental_pair.select(self.cache, origin)

    def keep(self, index: Tensor) -> None:
        incremental_pair.keep(self.cache, index)


def single(model: Any, enc: dict[str, Tensor], direction: str, k: int, cache: bool) -> Any:
    """The one-direction stepper: cached (default in the pipeline) or full-prefix (reference)."""
    return (CachedStepper if cache else FullPrefixStepper)(model, enc, direction, k)


def pair(model: Any, enc: dict[str, Tensor], k: int, cache: bool) -> Any:
    """The k x k pair stepper: cached or full-prefix (reference)."""
    return CachedPairStepper(model, enc, k) if cache else FullPrefixPairStepper(model, enc, k)
