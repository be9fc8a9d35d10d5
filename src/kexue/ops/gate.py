"""The champion/challenger gate: promote only a challenger that wins by a margin."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from kexue.config import ConfigError, require_at_least

# a metric named with one of these words (``loss``, ``val_ce_l2r``, ``recon_mse``) is a cost
LOWER_IS_BETTER_WORDS = frozenset({"loss", "ce", "nll", "mse", "mae", "error", "err",
                                   "perplexity", "ppl", "bpd", "bits"})


def lower_is_better(metric: str) -> bool:
    """Whether ``metric`` is a cost by its name (:data:`LOWER_IS_BETTER_WORDS`)."""
    return bool(LOWER_IS_BETTER_WORDS & set(re.split(r"[^a-z0-9]+", metric.lower())))


@dataclass
class GateConfig:
    """How a challenger must beat the champion to be promoted.

    Attributes:
        metric: Name of the score compared (e.g. ``acc`` on the fixed test split).
        higher_is_better: Direction of ``metric``; ``None`` (default) infers it from the name
            (:func:`lower_is_better`: ``loss``, ``ce``, ``mse`` ... are costs). A value that
            contradicts the name is refused: ``metric: loss`` with ``higher_is_better: true``
            would promote every WORSE challenger.
        margin: The challenger must be better by MORE than this (absolute; ties keep the champion).
    """

    metric: str = "acc"
    higher_is_better: bool | None = None
    margin: float = 0.0

    def validate(self) -> None:
        require_at_least(self, 0.0, "margin")
        if self.higher_is_better is True and lower_is_better(self.metric):
            raise ValueError(f"gate.metric {self.metric!r} is a cost (lower is better) but "
                             "gate.higher_is_better is true, so every worse challenger would "
                             "win. Fix: drop higher_is_better (it is inferred from the metric) "
                             "or set it to false")

    @property
    def higher(self) -> bool:
        """The direction in force: the explicit setting, else the one the name implies."""
        if self.higher_is_better is not None:
            return self.higher_is_better
        return not lower_is_better(self.metric)


def same_bundle(challenger: dict[str, Any], champion: dict[str, Any] | None) -> bool:
    """Whether the challenger IS the champion (equal content digests): a gate task retried after
    its promotion, or a bit-identical retrain. The gate then has nothing to decide."""
    from kexue.io.registry import bundle_digest

    return champion is not None and bundle_digest(challenger) == bundle_digest(champion)


def gate_config(raw: dict[str, Any] | None, where: str, metrics: tuple[str, ...]) -> GateConfig:
    """``raw`` as a :class:`GateConfig` whose metric is one of ``metrics``; the retrain nodes
    call it before training, so a misspelt gate fails in seconds, not after the fit."""
    from kexue.config import build_config

    cfg = build_config(GateConfig, raw, where=where)
    if cfg.metric not in metrics:
        raise ConfigError(f"Invalid parameter '{where}.metric': {cfg.metric!r}. Fix: use one of "
                          f"{list(metrics)} (the direction is inferred from the name).")
    return cfg


def decide(challenger: float, champion: float | None, cfg: GateConfig) -> tuple[bool, str]:
    """``(promote, reason)``. No champion yet: promote. Otherwise promote iff the challenger is
    better by more than ``cfg.margin`` on ``cfg.metric`` (a NaN challenger never wins; a NaN
    champion loses to any number)."""
    if math.isnan(challenger):
        return False, f"challenger {cfg.metric} is NaN"
    if champion is None:
        return True, "no champion yet: the first challenger is promoted"
    if math.isnan(champion):
        return True, f"champion {cfg.metric} is NaN: any scored challenger replaces it"
    gain = (challenger - champion) if cfg.higher else (champion - challenger)
    if gain > cfg.margin:
        return True, (f"challenger {cfg.metric} {challenger:.6g} beats champion {champion:.6g} "
                      f"by {gain:.6g} > margin {cfg.margin:g}")
    return False, (f"challenger {cfg.metric} {challenger:.6g} vs champion {champion:.6g}: gain "
                   f"{gain:.6g} is not above margin {cfg.margin:g}")


def _seen_line(seen: dict[str, Any] | None) -> str:
    """The report's line on the evaluation rows left out (:mod:`kexue.ops.seen`)."""
    if not seen:
        return ""
    left = seen["excluded_seen_by_champion_only"] + seen["excluded_seen_by_challenger_only"]
    line = (f"\nScored on {seen['n_scored']} of the split's {seen['n_eval_split']} rows: "
            f"{seen['excluded_seen_by_champion_only']} left out as trained on by the champion "
            f"only, {seen['excluded_seen_by_challenger_only']} by the challenger only")
    if seen["champion_train_keys"] not in ("recorded", "no champion"):
        line += f" (champion training rows {seen['champion_train_keys']})"
    elif left:
        line += " (the split changed since the champion was trained)"
    return line + ".\n"


def gate_decision(scores: dict[str, Any], challenger_bundle: dict[str, Any], cfg: GateConfig,
                  family: str, run_id: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The gate node's work for any model family (pure).

    Args:
        scores: ``{"challenger": {metric: value}, "champion": {...} | None,
            "champion_version": str | None, "n_eval": int, "eval_split": str, "seen": dict}``:
            both models scored on the same evaluation rows; ``seen`` (optional) is
            :func:`kexue.ops.seen.fair_rows`'s accounting of the rows left out.
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
    version = scores.get("champion_version")
    unchanged = bool(scores.get("same_as_champion"))
    if unchanged:
        promote, reason = False, (f"the challenger is the champion v{version} itself (same "
                                  "bundle digest: a retried gate task, or a bit-identical "
                                  "retrain): nothing to decide")
    else:
        promote, reason = decide(ch, cp, cfg)
    outcome = "unchanged" if unchanged else "promoted" if promote else "rejected"
    record = {"family": family, "promote": promote, "outcome": outcome, "reason": reason,
              "metric": cfg.metric,
              "higher_is_better": cfg.higher, "margin": cfg.margin,
              "challenger_score": ch, "champion_score": cp, "champion_version_before": version,
              "n_eval": scores["n_eval"], "eval_split": scores["eval_split"],
              "seen": scores.get("seen"), "kedro_run_id": run_id}
    tags = {"gate_decision": outcome, "gate_reason": reason,
            "gate_metric": cfg.metric, "gate_margin": cfg.margin, "challenger_score": ch,
            "champion_score": "none" if cp is None else cp,
            "champion_version_before": version or "none", "kedro_run_id": run_id}
    champion_row = (f"| champion (v{version}) | {cp:.4f} |" if cp is not None
                    else "| champion | none yet |")
    report = "\n".join([
        f"# Retraining {family}: champion / challenger gate\n",
        f"Kedro run id: `{run_id}`\n",
        f"**Decision: {outcome.upper()}** — {reason}.\n",
        f"| | {cfg.metric} on the fixed {scores['eval_split']} split (n = {scores['n_eval']}) |",
        "|---|---:|", f"| challenger | {ch:.4f} |", champion_row,
        _seen_line(scores.get("seen")),
        (f"Margin: {cfg.margin:g} ({'higher' if cfg.higher else 'lower'} is "
         "better; a tie keeps the champion). The challenger is registered either way (a bundle "
         "already registered keeps its version, re-tagged with this decision); only a "
         "promotion moves the `champion` alias.\n")])
    return {"bundle": challenger_bundle, "promote": promote, "tags": tags}, record, report
