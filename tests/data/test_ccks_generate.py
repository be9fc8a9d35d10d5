"""Embedded CCKS2019 default: determinism, official format, and the properties that make it hard."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kexue.data.ccks.generate import default_develop_lines, default_kb_lines, default_train_lines
from kexue.data.ccks.reader import Rejects, read_kb, read_texts
from kexue.data.ccks.world import build_world
from kexue.io import Line

N_ENT, N_TEXTS = 1200, 1500


@pytest.fixture(scope="module")
def kb() -> list[dict]:
    return [json.loads(x) for x in default_kb_lines(n_entities=N_ENT, seed=0)]


@pytest.fixture(scope="module")
def train() -> list[dict]:
    return [json.loads(x) for x in default_train_lines(n_texts=N_TEXTS, n_entities=N_ENT, seed=0)]


def test_deterministic_and_seed_dependent() -> None:
    a = list(default_train_lines(n_texts=50, n_entities=300, seed=3))
    build_world.cache_clear()  # rebuilt from scratch, not just served from the cache
    assert a == list(default_train_lines(n_texts=50, n_entities=300, seed=3))
    assert a != list(default_train_lines(n_texts=50, n_entities=300, seed=4))
    assert list(default_kb_lines(300, 3)) == list(default_kb_lines(300, 3))


def test_official_format(kb: list[dict], train: list[dict]) -> None:
    assert list(kb[0]) == ["alias", "subject_id", "subject", "type", "data"]
    assert len(kb) == N_ENT and len({e["subject_id"] for e in kb}) == N_ENT
    assert list(train[0]) == ["text_id", "text", "mention_data"]
    m = train[0]["mention_data"][0]
    assert list(m) == ["kb_id", "mention", "offset"] and isinstance(m["offset"], str)
    dev = [json.loads(x) for x in default_develop_lines(n_texts=20, n_entities=N_ENT, seed=0)]
    assert all(list(d) == ["text_id", "text"] for d in dev)
    assert not {d["text_id"] for d in dev} & {t["text_id"] for t in train[:20]}


def test_same_world_parses_without_rejects(kb: list[dict], train: list[dict]) -> None:
    rejects = Rejects()
    res_kb = read_kb([Line(i, json.dumps(e, ensure_ascii=False)) for i, e in enumerate(kb, 1)],
                     rejects)
    res = read_texts([Line(i, json.dumps(t, ensure_ascii=False)) for i, t in enumerate(train, 1)],
                     rejects, "train.json", kb_ids=res_kb.subject_ids)
    assert rejects.rows == []  # every offset matches and every kb_id is NIL or in the KB
    assert res.stats.mentions_accepted > N_TEXTS


def test_shared_names_have_different_types_and_descriptions(kb: list[dict]) -> None:
    by_name: dict[str, list[dict]] = {}
    for e in kb:
        by_name.setdefault(e["subject"], []).append(e)
    multi_type = {n: es for n, es in by_name.items() if len({tuple(e["type"]) for e in es}) > 1}
    assert len(multi_type) >= 20
    has_person_and_work = [n for n, es in multi_type.items()
                           if {"Human", "CreativeWork"} <= {t for e in es for t in e["type"]}]
    assert has_person_and_work
    for es in multi_type.values():
        preds = [frozenset(d["predicate"] for d in e["data"]) for e in es]
        descs = [json.dumps(e["data"], ensure_ascii=False) for e in es]
        assert len(set(descs)) == len(descs)
        if len({e["type"][0] for e in es}) == len(es):  # e.g. Human vs CreativeWork
            assert len(set(preds)) > 1  # type-specific predicate vocabularies


def test_contexts_come_from_the_entity_description(train: list[dict], kb: list[dict]) -> None:
    """For texts about a shared name, some other word of the text occurs in the gold
    entity's description far more often than in the descriptions of its namesakes."""
    desc = {e["subject_id"]: "".join(d["object"] for d in e["data"]) for e in kb}
    names: Counter = Counter(e["subject"] for e in kb)
    ids_by_name: dict[str, list[str]] = {}
    for e in kb:
        ids_by_name.setdefault(e["subject"], []).append(e["subject_id"])
    wins = total = 0
    for t in train:
        for m in t["mention_data"]:
            if m["kb_id"] == "NIL" or names[m["mention"]] < 2:
                continue
            ctx = t["text"].replace(m["mention"], "")
            bigrams = {ctx[i:i + 2] for i in range(len(ctx) - 1)}

            def score(sid: str) -> int:
                return sum(b in desc[sid] for b in bigrams)  # noqa: B023

            best = max(ids_by_name[m["mention"]], key=score)
            total += 1
            wins += best == m["kb_id"]
    assert total > 100 and wins / total > 0.6  # context disambiguates (chance is <= 1/2)


def test_nil_and_unlabelled_common_words(train: list[dict]) -> None:
    mentions = [m for t in train for m in t["mention_data"]]
    nil = [m for m in mentions if m["kb_id"] == "NIL"]
    assert 0.01 < len(nil) / len(mentions) < 0.2
    occurs = sum("在线" in t["text"] for t in train)
    labelled = sum(any(m["mention"] == "在线" for m in t["mention_data"]) for t in train)
    assert occurs > 100 and (occurs - labelled + 1) / (labelled + 1) >= 5  # pruned by el.py
    occurs = sum("迅雷" in t["text"] for t in train)
    labelled = sum(any(m["mention"] == "迅雷" for m in t["mention_data"]) for t in train)
    assert (occurs - labelled + 1) / (labelled + 1) < 1  # frequently annotated: kept


def test_overlapping_names_and_aliases(kb: list[dict], train: list[dict]) -> None:
    subjects = {e["subject"] for e in kb}
    stations = [s for s in subjects if s.endswith("站") and s[:-2] in subjects]
    assert stations  # e.g. 南京 and 南京南站
    assert any(a.startswith("《") for e in kb for a in e["alias"])
    assert any(e["subject"] != e["subject"].lower() for e in kb)  # upper-case product names
    assert any(m["mention"] in stations for t in train for m in t["mention_data"])
