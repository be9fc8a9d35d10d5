"""The submission node (encode-once linking) reproduces the per-pair path on the embedded default
world: same JSON lines for every develop text, same scores to float rounding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from kexue.models.entity_linking.features import object_match, object_pattern, segment
from kexue.models.entity_linking.pruning import candidate_ids
from kexue.models.entity_linking.training import load_linker, pruned_matcher
from kexue.pipelines.ccks_ingest.embedded import embedded_tables
from kexue.pipelines.entity_linking.nodes import learn_behaviour, predict_submission, train_linker
from kexue.training.threads import torch_threads
from tests.models.test_entity_linking_model import unit_loop_isin

ROOT = Path(__file__).resolve().parents[3]


def _params() -> dict:
    text = (ROOT / "conf/base/parameters_entity_linking.yml").read_text(encoding="utf-8")
    params = yaml.safe_load(text)["entity_linking"]
    params["data"]["max_train_texts"] = 1024  # brief training, default model sizes
    params["trainer"].update(max_epochs=1, enable_progress_bar=False)
    return params


@pytest.mark.slow
def test_submission_identical_to_per_pair_path() -> None:
    w = embedded_tables()  # the catalog's embedded default
    entities, aliases, texts, mentions, predict = (
        w[k] for k in ("entities", "aliases", "texts", "mentions", "predict"))
    assert len(predict) == 1000 and len(entities) == 3000
    params = _params()
    pruning = learn_behaviour(aliases, texts, mentions, params["pruning"])
    bundle = train_linker(entities, aliases, texts, mentions, pruning, None, params, seed=0)
    lines = predict_submission(bundle, entities, aliases, predict, pruning, params).splitlines()

    linker = load_linker(bundle, entities, pruned_matcher(aliases, pruning),
                         pruning["candidate_links"], params["data"]["eval_batch_size"])
    dec = params["decode"]
    items = linker.items([str(t) for t in predict["text"]])
    with torch_threads(1):
        spans = linker.ner(items, dec["ner_threshold"])
        ref = linker.link_per_pair(items, spans, dec["link_threshold"])
        new_spans, new = linker.predict(items, dec["ner_threshold"], dec["link_threshold"])
    ref_lines = [json.dumps({"text_id": str(tid), "text": it.text, "mention_data": [
        {"kb_id": r.kb_id, "mention": r.mention, "offset": str(r.offset)} for r in res]},
        ensure_ascii=False) for tid, it, res in zip(predict["text_id"], items, ref)]
    assert lines == ref_lines
    n_links = sum(len(json.loads(x)["mention_data"]) for x in lines)
    assert n_links > 1000  # a real workload: most texts link something
    assert sum(r.n_candidates > 1 for res in ref for r in res) > 100  # real choices were made

    assert new_spans == spans
    ref_scores = [(r.mention, r.offset, r.kb_id, r.n_candidates) for res in ref for r in res]
    assert [(r.mention, r.offset, r.kb_id, r.n_candidates) for res in new for r in res] == \
        ref_scores
    diffs = [abs(a.score - b.score) for x, y in zip(ref, new) for a, b in zip(x, y)]
    assert max(diffs) < 1e-5

    # the entity features of every scored pair equal their original formulas (whole-text jieba
    # of the description, the regex alternation of its short objects)
    feats = linker.resources.features
    checked = 0
    for it, text_spans in zip(items, spans):
        for s, e in dict.fromkeys(text_spans):
            for sid in candidate_ids(it.lower[s:e], linker.matcher, linker.links):
                desc = feats.descriptions.get(sid, "")
                expected = np.stack([
                    unit_loop_isin(list(it.lower), frozenset(desc)),
                    unit_loop_isin(it.words, frozenset(segment(desc))),
                    object_match(it.lower, object_pattern(feats.objects.get(sid, ())))], axis=1)
                assert (feats.features(it.lower, it.words, sid) == expected).all()
                checked += 1
    assert checked > 1000
