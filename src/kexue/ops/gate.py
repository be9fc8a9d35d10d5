"""The champion/challenger gate: promote only a challenger that wins by a margin."""

from __future__ import annotations

from dataclasses import dataclass

from kexue.config import require_at_least


@dataclass
class GateConfig:
    """How a challenger must beat the champion to be promoted.

    Attributes:
        metric: Name of the score compared (e.g. ``acc`` on the fixed test split).
        higher_is_better: False for losses.
        margin: The challenger must be better by MORE than this (absolute; ties keep the champion).
    """

    metric: str = "acc"
    higher_is_better: bool = True
    margin: float = 0.0

    def validate(self) -> None:
        require_at_least(self, 0.0, "margin")


def decide(challenger: float, champion: float | None, cfg: GateConfig) -> tuple[bool, str]:
    """``(promote, reason)``. No champion yet: promote. Otherwise promote iff the challenger is
    better by more than ``cfg.margin`` on ``cfg.metric`` (a NaN score never wins)."""
    if challenger != challenger:                       # NaN
        return False, f"challenger {cfg.metric} is NaN"
    if champion is None:
        return True, "no champion yet: the first challenger is promoted"
    gain = (challenger - champion) if cfg.higher_is_better else (champion - challenger)
    if gain > cfg.margin:
        return True, (f"challenger {cfg.metric} {challenger:.6g} beats champion {champion:.6g} "
                      f"by {gain:.6g} > margin {cfg.margin:g}")
    return False, (f"challenger {cfg.metric} {challenger:.6g} vs champion {champion:.6g}: gain "
                   f"{gain:.6g} is not above margin {cfg.margin:g}")
