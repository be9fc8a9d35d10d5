"""Glue between tables and the model: build matchers/resources, train, export and reload bundles."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from kexue.config import ConfigError, to_dict
from kexue.models.entity_linking.batching import (
    LinkingResources,
    LinkingTrainDataset,
    TrainText,
    collate,
)
from kexue.models.entity_linking.candidates import AliasMatcher, normalise_alias
from kexue.models.entity_linking.config import DESCRIPTION_CACHE_MIB, DataConfig, ModelConfig
from kexue.models.entity_linking.decode import Linker
from kexue.models.entity_linking.features import EntityFeatureCache, load_word_vectors
from kexue.models.entity_linking.module import EntityLinkingModule, module_from_bundle
from kexue.models.entity_linking.pruning import PruningConfig, apply_dictionary
from kexue.models.entity_linking.vocab import CharVocab
from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.ema import EMA
from kexue.training.history import EpochMetrics
from kexue.training.resume import ResumePlan, fit_identity
from kexue.training.trainer import build_trainer

logger = logging.getLogger(__name__)

Mention = tuple[str, int, str]


def matcher_from_aliases(aliases: pd.DataFrame) -> AliasMatcher:
    """Unpruned matcher from the ``ccks_aliases`` table (``alias``, ``subject_ids``)."""
    return AliasMatcher({a: [str(i) for i in ids] for a, ids in zip(aliases["alias"], aliases["subject_ids"])})


def pruned_matcher(aliases: pd.DataFrame, pruning: Mapping[str, Any]) -> AliasMatcher:
    """Matcher with the learned dictionary pruning applied."""
    cfg = PruningConfig(**pruning["config"])
    return apply_dictionary(matcher_from_aliases(aliases), pruning["dropped"], cfg)


def gold_by_text(mentions: pd.DataFrame, split: str | None = None) -> dict[str, list[Mention]]:
    """``{text_id: [(mention, offset, kb_id), ...]}`` (NIL kept; the metric drops it)."""
    df = mentions if split is None else mentions[mentions["split"] == split]
    out: dict[str, list[Mention]] = {}
    for tid, m, o, k in zip(df["text_id"], df["mention"], df["offset"], df["kb_id"]):
        out.setdefault(str(tid), []).append((str(m), int(o), str(k)))
    return out


def texts_of(texts: pd.DataFrame, split: str, limit: int | None = None) -> list[tuple[str, str]]:
    """``[(text_id, text)]`` of one split, in table order, optionally truncated."""
    df = texts[texts["split"] == split]
    rows = [(str(t), str(x)) for t, x in zip(df["text_id"], df["text"])]
    return rows[:limit] if limit is not None else rows


def build_resources(entities: pd.DataFrame, vocab: CharVocab, cfg: ModelConfig,
                    word2id: dict[str, int] | None = None) -> LinkingResources:
    """Per-entity caches (descriptions, short objects) + encoders."""
    descs = dict(zip(entities["subject_id"].astype(str), entities["description"].astype(str)))
    objects = {str(s): [str(o) for o in objs]
               for s, objs in zip(entities["subject_id"], entities["short_objects"])}
    return LinkingResources(vocab, EntityFeatureCache(descs, objects), cfg.max_desc_len, word2id)


def read_word_vectors(cfg: ModelConfig, source: Any = None
                      ) -> tuple[list[str] | None, torch.Tensor | None]:
    """Optional fixed word vectors from ``source`` (a :class:`kexue.io.LineSource` from the
    catalog); row 0 of the returned table is the unknown word (zeros)."""
    if not cfg.word_vectors:
        return None, None
    if source is None or not getattr(source, "exists", True):
        where = getattr(source, "path", "the catalog entry entity_linking_word_vectors")
        raise ConfigError(
            f"Invalid parameter 'entity_linking.model.word_vectors': true, but {where} does not "
            "exist. Fix: put word2vec text vectors there (see conf/base/catalog_entity_linking"
            ".yml), or set entity_linking.model.word_vectors: false.")
    words, vecs = load_word_vectors(source, getattr(source, "path", "word vectors"),
                                    cfg.max_words)
    table = np.concatenate([np.zeros((1, vecs.shape[1]), dtype=np.float32), vecs])
    return words, torch.from_numpy(table)


def train_texts(resources: LinkingResources, matcher: AliasMatcher, texts: Sequence[tuple[str, str]],
                gold: Mapping[str, list[Mention]]) -> list[TrainText]:
    """Texts with at least one non-NIL gold mention whose name is a live dictionary word."""
    out = []
    for tid, text in texts:
        usable = []
        for mention, offset, kb_id in gold.get(tid, ()):
            key = normalise_alias(mention)
            if kb_id != "NIL" and matcher.emitted(key) and offset + len(mention) <= len(text):
                usable.append((offset, offset + len(mention), key, kb_id))
        if usable:
            out.append(TrainText(resources.text_item(text, matcher), usable))
    return out


def train_model(entities: pd.DataFrame, aliases: pd.DataFrame, texts: pd.DataFrame,
                mentions: pd.DataFrame, pruning: Mapping[str, Any], model_cfg: ModelConfig,
                data_cfg: DataConfig, trainer_cfg: TrainerConfig, optim_cfg: OptimizerConfig,
                adversarial_cfg: AdversarialConfig, ema_cfg: EMAConfig, seed: int,
                word_vectors: Any = None, checkpoints: Any = None) -> dict[str, Any]:
    """Train the joint model on the train split; returns the bundle (EMA weights when enabled).

    ``word_vectors``: the ``entity_linking_word_vectors`` line source (used when
    ``model_cfg.word_vectors`` is on). ``checkpoints``: a :class:`kexue.io.checkpoints.
    CheckpointStore` for epoch checkpoints and an exact resume (``kexue.training.resume``)."""
    L.seed_everything(seed, workers=True, verbose=False)
    train = texts_of(texts, "train", data_cfg.max_train_texts)
    vocab = CharVocab.build(
        [*entities["description"].astype(str), *(t.lower() for _, t in train)],
        model_cfg.min_char_count)
    words, vectors = read_word_vectors(model_cfg, word_vectors)
    word2id = {w: i + 1 for i, w in enumerate(words)} if words is not None else None
    resources = build_resources(entities, vocab, model_cfg, word2id)
    matcher = pruned_matcher(aliases, pruning)
    examples = train_texts(resources, matcher, train, gold_by_text(mentions, "train"))
    if not examples:
        raise ValueError("no train text has a gold mention in the (pruned) alias dictionary; "
                         "check ccks_mentions / ccks_aliases or relax entity_linking.pruning")
    dataset = LinkingTrainDataset(examples, resources, matcher)
    module = EntityLinkingModule(len(vocab), model_cfg, optim_cfg, word_vectors=vectors)
    epochs = EpochMetrics()
    data = [(ex.item.text, ex.gold) for ex in examples]
    plan = ResumePlan(checkpoints, len(dataset), seed, per_item=True, identity={
        **fit_identity(module, trainer_cfg, data), "model_config": to_dict(model_cfg),
        "data_config": to_dict(data_cfg), "adversarial": to_dict(adversarial_cfg),
        "ema": to_dict(ema_cfg)})
    loader = DataLoader(dataset, batch_size=data_cfg.batch_size, collate_fn=collate,
                        **trainer_cfg.loader_kwargs(), **plan.loader_kwargs(shuffle=True))
    trainer = build_trainer(trainer_cfg, adversarial_cfg, ema_cfg,
                            callbacks=[epochs, *plan.callbacks], **plan.trainer_overrides)
    trainer.fit(module, train_dataloaders=loader, ckpt_path=plan.ckpt_path)
    plan.finish()
    ema = EMA.find(trainer)
    state = ema.ema_state_dict(module) if ema is not None else {
        k: v.detach().cpu() for k, v in module.state_dict().items()}
    logged = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    logger.info("entity_linking: trained on %d texts, vocab %d chars, metrics %s",
                len(examples), len(vocab), logged)
    return {
        "model_config": to_dict(model_cfg),
        "vocab_size": len(vocab),
        "chars": vocab.chars,
        "words": words,
        "state_dict": state,
        "train_summary": {"n_train_texts": len(examples), "global_step": int(trainer.global_step),
                          "ema": ema is not None, **logged, "epochs": epochs.rows},
    }


def training_configs(params: Mapping[str, Any], where: str = "params:entity_linking",
                     trainer: Mapping[str, Any] | None = None,
                     optimizer: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``train_model``'s config keyword arguments from ``params:entity_linking`` (failing fast
    on bad keys); ``trainer`` / ``optimizer`` keys are merged over the params' (retraining)."""
    from kexue.config import build_config
    from kexue.models.entity_linking.module import EMBEDDING_PATH
    from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig

    adversarial = dict(params.get("adversarial") or {})
    adversarial.setdefault("embedding", EMBEDDING_PATH)
    return {
        "model_cfg": build_config(ModelConfig, params.get("model"), where=f"{where}.model"),
        "data_cfg": build_config(DataConfig, params.get("data"), where=f"{where}.data"),
        "trainer_cfg": build_config(TrainerConfig,
                                    {**(params.get("trainer") or {}), **(trainer or {})},
                                    where=f"{where}.trainer"),
        "optim_cfg": build_config(OptimizerConfig,
                                  {**(params.get("optimizer") or {}), **(optimizer or {})},
                                  where=f"{where}.optimizer"),
        "adversarial_cfg": build_config(AdversarialConfig, adversarial,
                                        where=f"{where}.adversarial"),
        "ema_cfg": build_config(EMAConfig, params.get("ema"), where=f"{where}.ema"),
    }


def load_linker(bundle: Mapping[str, Any], entities: pd.DataFrame, matcher: AliasMatcher,
                links: Mapping[str, list[str]], batch_size: int,
                description_cache_mib: int = DESCRIPTION_CACHE_MIB) -> Linker:
    """Rebuild a :class:`Linker` from a saved bundle (``description_cache_mib``: the
    budget of its encoded-description cache, ``data.description_cache_mib``)."""
    module = module_from_bundle(dict(bundle))
    if torch.cuda.is_available():
        module = module.cuda()
    cfg = ModelConfig(**bundle["model_config"])
    words = bundle.get("words")
    word2id = {w: i + 1 for i, w in enumerate(words)} if words is not None else None
    resources = build_resources(entities, CharVocab(bundle["chars"]), cfg, word2id)
    return Linker(module, resources, matcher, links, batch_size,
                  cache_bytes=description_cache_mib * 2**20)
