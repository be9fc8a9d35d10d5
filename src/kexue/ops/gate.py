"""The champion/challenger gate: promote only a challenger that wins by a margin."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kexue.config import ConfigError, require_at_least


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
    if math.isnan(challenger):
        return False, f"challenger {cfg.metric} is NaN"
    if champion is None:
        return True, "no champion yet: the first challenger is promoted"
    gain = (challenger - champion) if cfg.higher_is_better else (champion - challenger)
    if gain > cfg.margin:
        return True, (f"challenger {cfg.metric} {challenger:.6g} beats champion {champion:.6g} "
                      f"by {gain:.6g} > margin {cfg.margin:g}")
    return False, (f"challenger {cfg.metric} {challenger:.6g} vs champion {champion:.6g}: gain "
                   f"{gain:.6g} is not above margin {cfg.margin:g}")


def gate_decision(scores: dict[str, Any], challenger_bundle: dict[str, Any], cfg: GateConfig,
                  family: str, run_id: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The gate node's work for any model family (pure).

    Args:
        scores: ``{"challenger": {metric: value}, "champion": {...} | None,
            "champion_version": str | None, "n_eval": int, "eval_split": str}``: both models
            scored on the same fixed evaluation set.
        challenger_bundle: What the registry stores for the challenger.
        cfg: The gate.
        family: Model family name (for the report).
        run_id: The Kedro run id.

    Returns:
        ``(registry decision, decision record, markdown report)``; the decision goes to
        :class:`kexue.io.RegistryDecisionDataset` (registers the challenger with the tags, moves
        the alias iff ``promote``).
    """
    if cfg.metric not in scores["challenger"]:
        raise ConfigError(f"Invalid parameter 'gate.metric': {cfg.metric!r} is not scored for "
                          f"{family}. Fix: use one of {sorted(scores['challenger'])}.")
    ch = float(scores["challenger"][cfg.metric])
    cp = None if scores["champion"] is None else float(scores["champion"][cfg.metric])
    promote, reason = decide(ch, cp, cfg)
    version = scores.get("champion_version")
    record = {"family": family, "promote": promote, "reason": reason, "metric": cfg.metric,
              "higher_is_better": cfg.higher_is_better, "margin": cfg.margin,
              "challenger_score": ch, "champion_score": cp, "champion_version_before": version,
              "n_eval": scores["n_eval"], "eval_split": scores["eval_split"],
              "kedro_run_id": run_id}
    tags = {"gate_decision": "promoted" if promote else "rejected", "gate_reason": reason,
            "gate_metric": cfg.metric, "gate_margin": cfg.margin, "challenger_score": ch,
            "champion_score": "none" if cp is None else cp,
            "champion_version_before": version or "none", "kedro_run_id": run_id}
    champion_row = (f"| champion (v{version}) | {cp:.4f} |" if cp is not None
                    else "| champion | none yet |")
    report = "\n".join([
        f"# Retraining {family}: champion / challenger gate\n",
        f"Kedro run id: `{run_id}`\n",
        f"**Decision: {'PROMOTED' if promote else 'REJECTED'}** — {reason}.\n",
        f"| | {cfg.metric} on the fixed {scores['eval_split']} split (n = {scores['n_eval']}) |",
        "|---|---:|", f"| challenger | {ch:.4f} |", champion_row,
        (f"\nMargin: {cfg.margin:g} ({'higher' if cfg.higher_is_better else 'lower'} is "
         "better; a tie keeps the champion). The challenger is registered either way; only a "
         "promotion moves the `champion` alias.\n")])
    return {"bundle": challenger_bundle, "promote": promote, "tags": tags}, record, report
