"""Nodes of ``title_generation``: encode pairs, train two independent unidirectional baselines
(L2R and R2L, each with its own encoder) and the bidirectional seq2seq (+ optional second pass),
decode the test split four ways, and report."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from kexue.config import build_config
from kexue.data.corpora.splits import split_overlap
from kexue.data.corpora.vocab import CharVocab
from kexue.models.title_gen.batching import TitleDataset, encode_texts
from kexue.models.title_gen.config import (
    DataConfig,
    DecodeConfig,
    LeadConfig,
    SecondPassConfig,
    Seq2SeqConfig,
)
from kexue.models.title_gen.evaluation import joint_greedy_split, resolve_device
from kexue.models.title_gen.lead import lead_baseline
from kexue.models.title_gen.report import evaluate_models, render_report
from kexue.models.title_gen.training import fit_seq2seq, from_bundle, to_bundle
from kexue.pipelines.title_generation.parameters import Parameters
from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.threads import torch_threads

logger = logging.getLogger(__name__)
P = "params:title_generation"
REQUIRED_COLUMNS = ("pair_id", "source", "target", "split")


def encode_title_pairs(title_pairs: pd.DataFrame, title_vocab: dict[str, Any],
                       data_params: dict[str, Any]) -> dict[str, Any]:
    """Encode sources and titles of every split to id lists (no specials, truncated).

    Args:
        title_pairs: ``pair_id, source, target, split (train|dev|test), ...`` (corpus_ingest).
        title_vocab: ``CharVocab.to_dict()`` output.
        data_params: ``params:title_generation.data`` (:class:`DataConfig`).

    Returns:
        ``{"vocab_size": V, "splits": {split: {"pair_id", "source", "target", "x", "title"}}}``;
        the train split is capped at ``max_train_examples`` and test at ``max_eval_examples``.
    """
    cfg = build_config(DataConfig, data_params, where=f"{P}.data")
    missing = [c for c in REQUIRED_COLUMNS if c not in title_pairs.columns]
    if missing:
        raise ValueError(f"title_pairs lacks columns {missing}; run the corpus_ingest pipeline first")
    vocab = CharVocab.from_dict(title_vocab)
    caps = {"train": cfg.max_train_examples, "test": cfg.max_eval_examples}
    splits: dict[str, dict[str, list]] = {}
    for split in ("train", "dev", "test"):
        df = title_pairs[title_pairs["split"] == split]
        if caps.get(split):
            df = df.head(caps[split])
        sources, targets = df["source"].astype(str).tolist(), df["target"].astype(str).tolist()
        splits[split] = {"pair_id": df["pair_id"].astype(str).tolist(), "source": sources,
                         "target": targets,
                         "x": encode_texts(vocab, sources, cfg.max_source_len),
                         "title": encode_texts(vocab, targets, cfg.max_target_len)}
    if not splits["train"]["x"]:
        raise ValueError("title_pairs has no 'train' rows; check corpus_ingest.split settings")
    logger.info("title pairs encoded: %s", {s: len(v["x"]) for s, v in splits.items()})
    return {"vocab_size": len(vocab), "splits": splits}


def _top(params: dict[str, Any]) -> Parameters:
    """``params:title_generation``'s top level, checked (a misspelt key fails here, naming it)."""
    return build_config(Parameters, params, where=P)


def _configs(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "top": _top(params),
        "data": build_config(DataConfig, params.get("data"), where=f"{P}.data"),
        "trainer": build_config(TrainerConfig, params.get("trainer"), where=f"{P}.trainer"),
        "optim": build_config(OptimizerConfig, params.get("optimizer"), where=f"{P}.optimizer"),
        "adv": build_config(AdversarialConfig, params.get("adversarial"), where=f"{P}.adversarial"),
        "ema": build_config(EMAConfig, params.get("ema"), where=f"{P}.ema"),
    }


def _train(encoded: dict[str, Any], params: dict[str, Any], seed: int, cross: bool,
           directions: str, kind: str, checkpoints: Any = None) -> dict[str, Any]:
    cfgs = _configs(params)
    model_cfg = build_config(Seq2SeqConfig, {**params.get("model", {}),
                                             "vocab_size": encoded["vocab_size"],
                                             "cross_attention": cross}, where=f"{P}.model")
    tr, dev = encoded["splits"]["train"], encoded["splits"]["dev"]
    with torch_threads(cfgs["top"].cpu_threads):
        model, history = fit_seq2seq(
            model_cfg, TitleDataset(tr["x"], tr["title"]), TitleDataset(dev["x"], dev["title"]),
        batch_size=cfgs["data"].batch_size, trainer_cfg=cfgs["trainer"], optim_cfg=cfgs["optim"],
        adversarial_cfg=cfgs["adv"], ema_cfg=cfgs["ema"], seed=seed, directions=directions,
        checkpoints=checkpoints if cfgs["trainer"].resumable else None)
    return to_bundle(model, kind, history)


def train_title_l2r_baseline(encoded: dict[str, Any], params: dict[str, Any],
                             seed: int, checkpoints: Any = None) -> dict[str, Any]:
    """Train the unidirectional L2R baseline: its own encoder + L2R decoder, loss = CE_l2r only.

    Same architecture as the bidirectional model without cross-direction attention; the R2L
    decoder exists in the module but receives no gradient and is never evaluated (a bundle of
    kind ``l2r_baseline``).
    """
    return _train(encoded, params, seed, cross=False, directions="l2r", kind="l2r_baseline",
                  checkpoints=checkpoints)


def train_title_r2l_baseline(encoded: dict[str, Any], params: dict[str, Any],
                             seed: int, checkpoints: Any = None) -> dict[str, Any]:
    """Train the unidirectional R2L baseline: its own encoder + R2L decoder, loss = CE_r2l only
    (the L2R decoder is untrained and never evaluated; a bundle of kind ``r2l_baseline``)."""
    return _train(encoded, params, seed, cross=False, directions="r2l", kind="r2l_baseline",
                  checkpoints=checkpoints)


def train_title_bidirectional(encoded: dict[str, Any], params: dict[str, Any],
                              seed: int, checkpoints: Any = None) -> dict[str, Any]:
    """Train the bidirectional seq2seq (decoders attend to each other, mask_right; loss = mean
    of the two direction CEs; a bundle)."""
    return _train(encoded, params, seed, cross=True, directions="both", kind="bidirectional",
                  checkpoints=checkpoints)


def train_title_second_pass(bidi_bundle: dict[str, Any], encoded: dict[str, Any],
                            params: dict[str, Any], seed: int,
                            checkpoints: Any = None) -> dict[str, Any]:
    """Optional second pass: fine-tune the bidirectional model on GENERATED opposite-direction
    context (first-pass joint greedy decode of every training source) while predicting gold.
    ``checkpoints`` (``title_gen_second_pass_checkpoints``) makes it resumable when
    ``trainer.resumable`` is true, ``mix_gold`` draws included.

    Returns:
        A model bundle, or ``{"kind": "disabled"}`` when ``second_pass.enabled`` is false.
    """
    top = _top(params)
    sp = build_config(SecondPassConfig, params.get("second_pass"), where=f"{P}.second_pass")
    if not sp.enabled:
        return {"kind": "disabled"}
    cfgs = _configs(params)
    dec = build_config(DecodeConfig, params.get("decode"), where=f"{P}.decode")
    first = from_bundle(bidi_bundle)
    device = resolve_device(top.device)
    tr, dev = encoded["splits"]["train"], encoded["splits"]["dev"]
    threads = torch_threads(top.cpu_threads)
    with threads:
        ctx = {name: joint_greedy_split(first, split["x"], max_len=dec.max_len,
                                        batch_size=max(dec.batch_size, 32), device=device,
                                        cache=dec.cache)
               for name, split in (("train", tr), ("dev", dev))}
    trainer_cfg = build_config(TrainerConfig, {**params.get("trainer", {}),
                                               "max_epochs": sp.max_epochs}, where=f"{P}.trainer")
    optim = build_config(OptimizerConfig, {**params.get("optimizer", {}), "lr": sp.lr},
                         where=f"{P}.optimizer")
    with threads:
        model, history = fit_seq2seq(
            first.cfg, TitleDataset(tr["x"], tr["title"], *ctx["train"]),
            TitleDataset(dev["x"], dev["title"], *ctx["dev"]), batch_size=cfgs["data"].batch_size,
            trainer_cfg=trainer_cfg, optim_cfg=optim, adversarial_cfg=cfgs["adv"],
            ema_cfg=cfgs["ema"], seed=seed, init_state=first.cpu().state_dict(),
            mix_gold=sp.mix_gold, checkpoints=checkpoints if trainer_cfg.resumable else None)
    return to_bundle(model, "bidirectional_2pass", history)


def evaluate_title_generation(l2r_baseline: dict[str, Any], r2l_baseline: dict[str, Any],
                              bidirectional: dict[str, Any],
                              second_pass: dict[str, Any], encoded: dict[str, Any],
                              title_vocab: dict[str, Any], params: dict[str, Any],
                              ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Decode the test split with every configured method and score it.

    ``l2r_greedy`` / ``l2r_beam`` decode the L2R baseline, ``r2l_beam`` the R2L baseline,
    ``bidi_beam`` the bidirectional model(s).

    Returns:
        (metrics table: one row per (model, method) with char ROUGE-1/2/L, BLEU, exact match,
        seconds per example and its ratio to L2R beam; samples table: generated titles beside
        the references; leakage dict: teacher-forced CE per direction with gold vs generated
        opposite-direction context; each baseline reports only its trained direction).
    """
    top = _top(params)
    dec = build_config(DecodeConfig, params.get("decode"), where=f"{P}.decode")
    models = {"l2r_baseline": from_bundle(l2r_baseline), "r2l_baseline": from_bundle(r2l_baseline),
              "bidirectional": from_bundle(bidirectional)}
    if second_pass.get("kind") != "disabled":
        models["bidirectional_2pass"] = from_bundle(second_pass)
    with torch_threads(top.cpu_threads):
        return evaluate_models(models, encoded["splits"]["test"], CharVocab.from_dict(title_vocab),
                               dec, resolve_device(top.device),
                               batch_size=build_config(DataConfig, params.get("data")).batch_size)


def lead_n_baseline(encoded: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Lead-N baseline: N tuned on dev (ROUGE-L), scored on the same test pairs the models
    decode, with the same metrics (:func:`kexue.models.title_gen.lead.lead_baseline`).

    Returns:
        The lead dict, or ``{"enabled": False}`` when ``lead.enabled`` is false.
    """
    cfg = build_config(LeadConfig, params.get("lead"), where=f"{P}.lead")
    if not cfg.enabled:
        return {"enabled": False}
    out = lead_baseline(encoded["splits"]["dev"], encoded["splits"]["test"], cfg.max_n)
    logger.info("lead-%d baseline on test: %s", out["n"], out["test"])
    return {"enabled": True, **out}


def report_title_generation(metrics: pd.DataFrame, samples: pd.DataFrame,
                            leakage: dict[str, Any], title_pairs: pd.DataFrame,
                            params: dict[str, Any], run_id: str,
                            lead: dict[str, Any] | None = None) -> str:
    """Markdown report: metrics side by side, the lead-N floor, the split overlap (train titles
    seen again in test), the leakage check, samples and an honest verdict."""
    return render_report(metrics, samples, leakage, params, run_id, split_overlap(title_pairs),
                         lead)
