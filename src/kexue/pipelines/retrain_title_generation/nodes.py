"""Nodes of ``retrain_title_generation``. The served title generator is the L2R seq2seq with
beam search (on the embedded corpus it is the strong baseline; bidirectional decoding only draws
level after a second pass, see the README): challenger, both decoded on the fixed test split,
gate on a char-level metric (ROUGE-L by default)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from kexue.config import build_config
from kexue.data.corpora.vocab import CharVocab
from kexue.models.title_gen.batching import TitleDataset, encode_texts
from kexue.models.title_gen.config import DataConfig, DecodeConfig, Seq2SeqConfig
from kexue.models.title_gen.evaluation import decode_split
from kexue.models.title_gen.metrics import generation_metrics
from kexue.models.title_gen.training import fit_seq2seq, from_bundle, to_bundle
from kexue.ops.gate import gate_config, gate_decision, same_bundle
from kexue.ops.seen import KEYS, fair_rows, subset, train_keys
from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.threads import torch_threads

logger = logging.getLogger(__name__)
WHERE = "params:retrain_title_generation"
TG = "params:title_generation"
METRICS = ("rouge_1", "rouge_2", "rouge_l", "bleu", "exact_match")


@dataclass
class RetrainConfig:
    """``params:retrain_title_generation``.

    Args:
        warm_start: Start from the champion's weights when its architecture and its char
            vocabulary (the same chars under the same ids) equal the challenger's.
        trainer: Keys merged over ``title_generation.trainer``.
        optimizer: Keys merged over ``title_generation.optimizer``.
        gate: :class:`kexue.ops.gate.GateConfig`; metric one of rouge_1, rouge_2, rouge_l,
            bleu, exact_match.
    """

    warm_start: bool = False
    trainer: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    gate: dict = field(default_factory=lambda: {"metric": "rouge_l"})


def train_challenger(encoded: dict[str, Any], champion: dict[str, Any],
                     title_vocab: dict[str, Any], tg: dict[str, Any], retrain: dict[str, Any],
                     seed: int) -> dict[str, Any]:
    """Train an L2R challenger on the current train split (``params:title_generation``); its
    bundle keeps the run's char vocabulary (``title_vocab``) for later runs to score it with."""
    cfg = build_config(RetrainConfig, retrain, where=WHERE)
    gate_config(cfg.gate, f"{WHERE}.gate", METRICS)  # before training, not after it
    itos = list(CharVocab.from_dict(title_vocab).itos)
    model_cfg = build_config(Seq2SeqConfig, {**(tg.get("model") or {}),
                                             "vocab_size": encoded["vocab_size"],
                                             "cross_attention": False}, where=f"{TG}.model")
    init = None
    champ = champion.get("bundle") if champion else None
    if cfg.warm_start and champ is not None:
        if champ.get("config") == asdict(model_cfg) and (champ.get("vocab") or {}).get(
                "itos") == itos:
            init = champ["state_dict"]
        else:
            logger.warning("retrain_title_generation: champion v%s differs in architecture or "
                           "vocabulary; not warm starting", champion.get("version"))
    tr, dev = encoded["splits"]["train"], encoded["splits"]["dev"]
    data = build_config(DataConfig, tg.get("data"), where=f"{TG}.data")
    with torch_threads(int(tg.get("cpu_threads", 0))):
        model, history = fit_seq2seq(
            model_cfg, TitleDataset(tr["x"], tr["title"]), TitleDataset(dev["x"], dev["title"]),
            batch_size=data.batch_size,
            trainer_cfg=build_config(TrainerConfig, {**(tg.get("trainer") or {}), **cfg.trainer},
                                     where=f"{WHERE}.trainer"),
            optim_cfg=build_config(OptimizerConfig,
                                   {**(tg.get("optimizer") or {}), **cfg.optimizer},
                                   where=f"{WHERE}.optimizer"),
            adversarial_cfg=build_config(AdversarialConfig, tg.get("adversarial"),
                                         where=f"{TG}.adversarial"),
            ema_cfg=build_config(EMAConfig, tg.get("ema"), where=f"{TG}.ema"),
            seed=int(seed), init_state=init, directions="l2r")
    history["warm_started_from"] = champion.get("version") if init is not None else None
    return {**to_bundle(model, "l2r_baseline", history, itos=itos),
            KEYS: train_keys(tr["source"])}


def _score(bundle: dict[str, Any], test: dict[str, Any], vocab: CharVocab,
           dec: DecodeConfig, max_source_len: int) -> dict[str, float]:
    """Decode the test sources with ``bundle``'s OWN vocabulary when it has one (a champion of
    an earlier run numbers the chars differently), else with the run's ``vocab``."""
    x = test["x"]
    own = (bundle.get("vocab") or {}).get("itos")
    if own is not None and list(own) != list(vocab.itos):
        vocab = CharVocab(list(own))
        x = encode_texts(vocab, [str(t) for t in test["source"]], max_source_len)
    elif own is None and bundle["config"]["vocab_size"] != len(vocab):
        logger.warning("retrain_title_generation: a bundle without its vocabulary and with %d "
                       "ids (this run: %d) cannot be decoded here; it scores NaN",
                       bundle["config"]["vocab_size"], len(vocab))
        return {m: float("nan") for m in ("rouge_1", "rouge_2", "rouge_l", "bleu",
                                          "exact_match")} | {"n": len(x)}
    ids, _, _ = decode_split(from_bundle(bundle), x, "l2r_beam",
                             beam_size=dec.beam_size, max_len=dec.max_len,
                             batch_size=dec.batch_size)
    return generation_metrics([vocab.decode(r) for r in ids], [str(t) for t in test["target"]])


def evaluate_candidates(challenger: dict[str, Any], champion: dict[str, Any],
                        encoded: dict[str, Any], title_vocab: dict[str, Any],
                        tg: dict[str, Any]) -> dict[str, Any]:
    """L2R beam decoding of challenger AND champion on the same fixed test split, less the
    pairs whose source only one of them trained on (:func:`kexue.ops.seen.fair_rows`)."""
    dec = build_config(DecodeConfig, tg.get("decode"), where=f"{TG}.decode")
    max_len = build_config(DataConfig, tg.get("data"), where=f"{TG}.data").max_source_len
    vocab = CharVocab.from_dict(title_vocab)
    test = encoded["splits"]["test"]
    keep, seen = fair_rows(list(test["source"]), champion.get("bundle"), challenger)
    test = subset(test, keep)
    with torch_threads(int(tg.get("cpu_threads", 0))):
        ch = _score(challenger, test, vocab, dec, max_len)
        cp = None if champion.get("bundle") is None else _score(champion["bundle"], test,
                                                                vocab, dec, max_len)
    return {"n_eval": len(test["x"]), "eval_split": "test", "seen": seen, "challenger": ch,
            "same_as_champion": same_bundle(challenger, champion.get("bundle")),
            "champion": cp, "champion_version": champion.get("version")}


def decide_promotion(scores: dict[str, Any], challenger: dict[str, Any],
                     retrain: dict[str, Any], run_id: str
                     ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The gate (see :func:`kexue.ops.gate.gate_decision`)."""
    cfg = build_config(RetrainConfig, retrain, where=WHERE)
    gate = gate_config(cfg.gate, f"{WHERE}.gate", METRICS)
    decision, record, report = gate_decision(scores, challenger, gate, "the title generator",
                                             run_id)
    logger.info("retrain_title_generation gate: %s (%s)", decision["tags"]["gate_decision"],
                record["reason"])
    return decision, record, report
