"""How a loss is normalised: weighted sums over *normaliser groups* (samples, tokens, pairs ...).

Every mean-reduced loss in the project is ``sum of per-element losses / number of elements``, but
the elements differ: the ``tricks`` classifier averages over samples, title generation over target
tokens, the entity linker over characters (start/end BCE) *and* over (mention, candidate) pairs
(matching BCE). A module says so by returning :class:`LossTerms` from ``loss_terms(batch)``::

    loss = sum_t  w_t * S_t / N_{g(t)}

``S_t`` is term ``t``'s sum over this batch, ``g(t)`` its normaliser group and ``N_g`` the number of
elements of group ``g``. With the batch's own counts this is the usual per-batch mean
(:meth:`LossTerms.mean`). :class:`kexue.training.accumulation.ExactAccumulation` instead supplies
the counts of the whole accumulation window, which makes ``k`` micro-batches give exactly the
gradient of the same loss computed on the concatenated big batch -- for every group at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

SAMPLES = "samples"   # the default normaliser group: leading dimension of the batch


@dataclass
class LossTerms:
    """A loss as a weighted sum of group-normalised sums (see the module docstring).

    Attributes:
        sums: term name -> scalar sum of its per-element losses over the batch.
        groups: term name -> normaliser group (terms sharing a group share its count).
        counts: group -> number of elements of that group in the batch.
        weights: term name -> weight ``w_t`` (missing = 1).
        metrics: extra detached values to log (not part of the loss).
    """

    sums: dict[str, Tensor]
    groups: dict[str, str]
    counts: dict[str, float | Tensor]
    weights: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [t for t in self.sums if self.groups.get(t) not in self.counts]
        if missing:
            raise ValueError(f"LossTerms: terms {missing} have no count for their group "
                             f"(groups {self.groups}, counts {list(self.counts)})")

    def mean(self, normalizer: Mapping[str, float] | None = None) -> Tensor:
        """``sum_t w_t S_t / N_g(t)`` with ``N`` = ``normalizer`` (window counts) or this batch's.

        A group with no element in this batch contributes 0 (its sum is 0), as in a masked mean.
        """
        norm = self.counts if normalizer is None else normalizer
        total: Tensor | None = None
        for name, s in self.sums.items():
            group = self.groups[name]
            if group not in norm:
                raise KeyError(f"normaliser has no count for group {group!r} of term {name!r}; "
                               f"it has {sorted(norm)}: loss_counts(batch) must return every "
                               "group that loss_terms(batch) uses")
            n = norm[group]
            w = self.weights.get(name, 1.0)
            if isinstance(n, Tensor):        # no host sync for on-device counts
                part = s * w / n.to(s.dtype).clamp(min=1.0)
            else:
                factor = w / max(float(n), 1e-12 if normalizer is not None else 1.0)
                part = s if factor == 1.0 else s * factor      # x * 1.0 == x: skip the op
            total = part if total is None else total + part
        if total is None:
            raise ValueError("LossTerms has no terms")
        return total

    def term_means(self) -> dict[str, Tensor]:
        """Each term's per-batch mean ``S_t / N_g(t)`` (detached), e.g. for logging."""
        out = {}
        for t, s in self.sums.items():
            n = self.counts[self.groups[t]]
            n = n.to(s.dtype).clamp(min=1.0) if isinstance(n, Tensor) else max(float(n), 1.0)
            out[t] = (s / n).detach()
        return out


def count(x: Tensor | float) -> float:
    """A count as a Python float (accepts 0-d tensors)."""
    return float(x.detach().sum()) if isinstance(x, torch.Tensor) else float(x)
