"""CCKS2019 readers: real-sample round trip, one test per reject reason, counts, el.py preprocessing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kexue.data.ccks.kb import el_preprocess, strip_title_marks
from kexue.data.ccks.reader import Rejects, assign_split, read_kb, read_texts
from kexue.data.ccks.schemas import (
    AliasesSchema,
    EntitiesSchema,
    PredictTextsSchema,
    RejectsSchema,
)
from kexue.io import Line, TextLinesDataset


def _lines(*texts: str) -> list[Line]:
    return [Line(i, t) for i, t in enumerate(texts, start=1)]


def _kb(sid: str = "1", subject: str = "南京", **over) -> str:
    rec = {"alias": ["金陵"], "subject_id": sid, "subject": subject, "type": ["Place"],
           "data": [{"predicate": "义项描述", "object": "江苏省会"}]}
    rec.update(over)
    return json.dumps(rec, ensure_ascii=False)


def _train(tid: str = "1", text: str = "坐高铁到南京", mentions=None) -> str:
    if mentions is None:
        mentions = [{"kb_id": "1", "mention": "南京", "offset": "4"}]
    return json.dumps({"text_id": tid, "text": text, "mention_data": mentions}, ensure_ascii=False)


# ---------------------------------------------------------------- real samples
def test_real_kb_sample_round_trips(shared_samples: Path) -> None:
    path = shared_samples / "ccks2019_el" / "kb_data_sample.jsonl"
    rejects = Rejects()
    kb = read_kb(TextLinesDataset(filepath=str(path)).load(), rejects)
    raw = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert kb.stats.read == len(raw) == kb.stats.accepted and rejects.rows == []
    EntitiesSchema.validate(kb.entities)
    AliasesSchema.validate(kb.aliases)
    first = kb.entities.iloc[0]
    assert first["subject_id"] == raw[0]["subject_id"]
    assert json.loads(first["data_json"]) == raw[0]["data"]
    assert first["types"] == "|".join(raw[0]["type"])
    # every alias of every entity points back to it
    lookup = dict(zip(kb.aliases["alias"], kb.aliases["subject_ids"], strict=True))
    for rec in raw:
        for a in [rec["subject"], *rec["alias"]]:
            key = strip_title_marks(a.lower())
            if key.strip():
                assert rec["subject_id"] in lookup[key]


def test_real_train_sample_round_trips(shared_samples: Path) -> None:
    path = shared_samples / "ccks2019_el" / "train_sample.json"
    raw = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    rejects = Rejects()
    res = read_texts(TextLinesDataset(filepath=str(path)).load(), rejects, "train.json",
                     kb_ids=None)  # the 80-entity KB sample does not cover the train ids
    assert rejects.rows == []
    assert res.stats.accepted == len(raw) == len(res.texts)
    n_mentions = sum(len(r["mention_data"]) for r in raw)
    assert res.stats.mentions_accepted == n_mentions == len(res.mentions)
    m = res.mentions.iloc[0]
    assert (m["text_id"], m["mention"], m["offset"], m["kb_id"]) == ("1", "南京南站", 0, "311223")
    assert (res.mentions["kb_id"] == "NIL").sum() == sum(
        x["kb_id"] == "NIL" for r in raw for x in r["mention_data"])


def test_real_train_sample_against_kb_sample_rejects_only_unknown_ids(shared_samples: Path) -> None:
    root = shared_samples / "ccks2019_el"
    kb = read_kb(TextLinesDataset(filepath=str(root / "kb_data_sample.jsonl")).load(), Rejects())
    rejects = Rejects()
    res = read_texts(TextLinesDataset(filepath=str(root / "train_sample.json")).load(), rejects,
                     "train.json", kb_ids=kb.subject_ids)
    reasons = {r[3] for r in rejects.rows}
    assert reasons == {"unknown_kb_id"} and {r[2] for r in rejects.rows} == {"mention"}
    kept = res.mentions["kb_id"]
    assert kept.map(lambda k: k == "NIL" or k in kb.subject_ids).all()
    assert res.stats.rejected == 0  # no whole text lost


# ---------------------------------------------------------------- rejects, one per reason
GOOD_KB = _kb("1")
KB_BAD = {
    "empty_line": "   ",
    "invalid_json": '{"subject_id": "2", ',
    "not_an_object": '["a", "b"]',
    "missing_field": json.dumps({"alias": [], "subject": "x", "type": [], "data": []}),
    "bad_field": _kb("2", alias="金陵"),
    "empty_field": _kb("2", subject=""),
    "duplicate_subject_id": _kb("1", subject="别的"),
}


@pytest.mark.parametrize("reason", sorted(KB_BAD))
def test_kb_reject_reason(reason: str) -> None:
    rejects = Rejects()
    kb = read_kb(_lines(GOOD_KB, KB_BAD[reason], _kb("3", subject="上海")), rejects)
    assert kb.stats.read == 3 and kb.stats.accepted == 2 and kb.stats.rejected == 1
    df = RejectsSchema.validate(rejects.to_frame())
    assert df.to_dict("records")[0] | {"detail": None} == {
        "file": "kb_data", "line": 2, "level": "record", "reason": reason, "detail": None,
        "record": KB_BAD[reason][:200]}
    assert list(kb.entities["subject_id"]) == ["1", "3"]


def test_kb_bad_data_item_is_rejected() -> None:
    rejects = Rejects()
    bad = _kb("2", data=[{"predicate": "标签"}])
    read_kb(_lines(bad), rejects)
    assert rejects.rows[0][3] == "bad_field" and "data[0]" in rejects.rows[0][4]


def test_invalid_utf8_line_from_file(tmp_path: Path) -> None:
    path = tmp_path / "kb_data"
    path.write_bytes(GOOD_KB.encode() + b"\n" + b'{"subject": "\xff\xfe"}\n'
                     + _kb("3").encode() + b"\n")
    rejects = Rejects()
    kb = read_kb(TextLinesDataset(filepath=str(path)).load(), rejects)
    assert (kb.stats.read, kb.stats.accepted, kb.stats.rejected) == (3, 2, 1)
    assert rejects.rows[0][:4] == ("kb_data", 2, "record", "invalid_utf8")



@pytest.mark.parametrize("over", [{"subject_id": "  "}, {"subject": "\u3000 "}, {"subject": "\t"}],
                         ids=["blank_subject_id", "ideographic_space_subject", "tab_subject"])
def test_kb_whitespace_only_field_is_empty_field(over: dict) -> None:
    # a whitespace-only subject is no alias anyone can type and can never be linked
    rejects = Rejects()
    kb = read_kb(_lines(GOOD_KB, _kb("2", **over)), rejects)
    assert (kb.stats.read, kb.stats.accepted, kb.stats.rejected) == (2, 1, 1)
    assert rejects.rows[0][:4] == ("kb_data", 2, "record", "empty_field")
    assert "only whitespace" in rejects.rows[0][4]

TRAIN_RECORD_BAD = {
    "empty_text": _train("2", text="  ", mentions=[]),
    "duplicate_text_id": _train("1"),
    "missing_field": json.dumps({"text_id": "2", "text": "南京"}),
    "bad_field": json.dumps({"text_id": 2, "text": "南京", "mention_data": []}),
    "invalid_json": "{oops",
}


@pytest.mark.parametrize("reason", sorted(TRAIN_RECORD_BAD))
def test_train_record_reject_reason(reason: str) -> None:
    rejects = Rejects()
    res = read_texts(_lines(_train("1"), TRAIN_RECORD_BAD[reason], _train("3")), rejects,
                     "train.json", kb_ids={"1"})
    assert (res.stats.read, res.stats.accepted, res.stats.rejected) == (3, 2, 1)
    assert rejects.rows[0][:4] == ("train.json", 2, "record", reason)
    assert list(res.texts["text_id"]) == ["1", "3"]



def test_train_whitespace_only_text_id_is_empty_field() -> None:
    rejects = Rejects()
    res = read_texts(_lines(_train("1"), _train("  ")), rejects, "train.json", kb_ids={"1"})
    assert (res.stats.read, res.stats.accepted, res.stats.rejected) == (2, 1, 1)
    assert rejects.rows[0][:4] == ("train.json", 2, "record", "empty_field")

MENTION_BAD = {
    "bad_mention": {"kb_id": "1", "mention": "南京", "offset": 4},  # offset must be a string
    "bad_offset": {"kb_id": "1", "mention": "南京", "offset": "4.0"},
    "offset_out_of_range": {"kb_id": "1", "mention": "南京", "offset": "5"},
    "mention_mismatch": {"kb_id": "1", "mention": "南京", "offset": "3"},
    "unknown_kb_id": {"kb_id": "999", "mention": "南京", "offset": "4"},
}



@pytest.mark.parametrize("bad", [{"kb_id": "1", "mention": " ", "offset": "1"},
                                 {"kb_id": " ", "mention": "南京", "offset": "5"}],
                         ids=["blank_mention", "blank_kb_id"])
def test_train_whitespace_only_mention_or_kb_id_is_bad_mention(bad: dict) -> None:
    # both align with the text ("坐 高铁到南京": the space at 1, 南京 at 5) and, read without a
    # KB id set (develop / predict inputs), the previous reader accepted them
    text = "坐 高铁到南京"
    assert text[int(bad["offset"]):].startswith(bad["mention"])
    rejects = Rejects()
    res = read_texts(_lines(_train("7", text=text, mentions=[bad])), rejects, "train.json",
                     kb_ids=None)
    assert (res.stats.mentions_read, res.stats.mentions_rejected) == (1, 1)
    assert rejects.rows[0][:4] == ("train.json", 1, "mention", "bad_mention")
    assert "whitespace-only" in rejects.rows[0][4]

@pytest.mark.parametrize("reason", sorted(MENTION_BAD))
def test_train_mention_reject_reason(reason: str) -> None:
    good = {"kb_id": "2", "mention": "高铁", "offset": "1"}
    nil = {"kb_id": "NIL", "mention": "南京", "offset": "4"}
    rejects = Rejects()
    res = read_texts(_lines(_train("1"), _train("7", mentions=[good, MENTION_BAD[reason], nil])),
                     rejects, "train.json", kb_ids={"1", "2"})
    # mention granularity: the text is kept with its two good mentions
    assert (res.stats.read, res.stats.accepted, res.stats.rejected) == (2, 2, 0)
    assert (res.stats.mentions_read, res.stats.mentions_accepted,
            res.stats.mentions_rejected) == (4, 3, 1)
    row = rejects.rows[0]
    assert row[:4] == ("train.json", 2, "mention", reason)
    assert json.loads(row[5])["text_id"] == "7"
    texts = res.texts.set_index("text_id")
    assert texts.loc["7", "n_mentions"] == 2 and texts.loc["7", "n_rejected_mentions"] == 1
    assert list(res.mentions[res.mentions["text_id"] == "7"]["kb_id"]) == ["2", "NIL"]


def test_counts_conserved_on_a_mixed_file() -> None:
    lines = _lines(_train("1"), "", "{x", _train("1"), _train("2", mentions=[
        {"kb_id": "1", "mention": "南京", "offset": "0"}]), _train("3"))
    rejects = Rejects()
    res = read_texts(lines, rejects, "train.json", kb_ids={"1"})
    st = res.stats
    assert st.read == 6 == st.accepted + st.rejected and st.rejected == 3
    assert st.mentions_read == st.mentions_accepted + st.mentions_rejected == 3
    assert len(rejects.rows) == st.rejected + st.mentions_rejected
    assert sorted(r[1] for r in rejects.rows) == [2, 3, 4, 5]


def test_develop_ignores_mention_data_and_validates_texts() -> None:
    rejects = Rejects()
    res = read_texts(_lines('{"text_id": "9", "text": "南京"}', '{"text_id": "9", "text": "x"}'),
                     rejects, "develop.json", labelled=False)
    PredictTextsSchema.validate(res.texts[["text_id", "text"]])
    assert res.mentions.empty and rejects.rows[0][3] == "duplicate_text_id"


# ---------------------------------------------------------------- el.py preprocessing, split
def test_el_preprocess_matches_hand_computation() -> None:
    aliases, desc, short = el_preprocess(
        "LG G5", ["lg g5", "《G5》"],
        [("摘要", "LG G5是LG公司推出的一款手机，发布于2016年2月的世界移动通信大会。"), ("品牌", "LG")])
    assert aliases == ["lg g5", "《g5》"]
    assert desc == ("摘要：lg g5是lg公司推出的一款手机，发布于2016年2月的世界移动通信大会。\n"
                    "品牌：lg\n名称：lg g5、《g5》")
    assert short == ["lg g5、《g5》", "LG"]  # <= 10 chars, original case, longest first
    assert strip_title_marks("《g5》") == "g5"


def test_alias_table_groups_shared_names() -> None:
    kb = read_kb(_lines(_kb("1", subject="胜利"), _kb("2", subject="胜利", alias=["《胜利》"]),
                        _kb("10", subject="Victory", alias=["胜利"])), Rejects())
    table = dict(zip(kb.aliases["alias"], kb.aliases["subject_ids"], strict=True))
    assert table["胜利"] == ["1", "10", "2"] and table["victory"] == ["10"]
    assert "《胜利》" not in table


def test_split_is_fixed_and_one_in_nine() -> None:
    ids = pd.Series([str(i) for i in range(900)])
    a, b = assign_split(ids, 9, 0), assign_split(ids, 9, 0)
    assert a.equals(b) and (a == "dev").sum() == 100
    assert not a.equals(assign_split(ids, 9, 1))


def test_split_keeps_identical_texts_together_and_counts_duplicates() -> None:
    from kexue.data.ccks.reader import duplicate_stats

    texts = pd.Series([f"t{i % 40}" for i in range(120)])     # every text 3 times
    ids = pd.Series([str(i) for i in range(120)])
    split = assign_split(ids, 4, 0, texts=texts)
    per_text = pd.DataFrame({"t": texts, "s": split}).groupby("t")["s"].nunique()
    assert (per_text == 1).all()                              # never on both sides
    assert (split == "dev").sum() == 3 * 10                   # 40 distinct texts / 4 -> 10 groups
    stats = duplicate_stats(texts, split)
    assert stats == {"duplicate_rows": 80, "repeated_texts": 40, "cross_split_texts": 0}
    # The row split (the old behaviour) leaks: the same text lands in train and dev.
    leaky = duplicate_stats(texts, assign_split(ids, 4, 0))
    assert leaky["cross_split_texts"] > 0
    # Without duplicates the grouped split is the plain el.py row split.
    distinct = pd.Series([f"u{i}" for i in range(120)])
    assert assign_split(ids, 9, 0, texts=distinct).equals(assign_split(ids, 9, 0))


REAL_CCKS = Path(__file__).resolve().parents[2].parent / "shared" / "real-data" \
    / "ccks2019_el" / "train_first10000.json"


@pytest.mark.skipif(not REAL_CCKS.is_file(), reason="../shared/real-data is not present")
def test_real_ccks_train_duplicates_stay_on_one_side() -> None:
    """The first 10k official train texts repeat 7 texts; none may straddle train and dev."""
    from kexue.data.ccks.reader import duplicate_stats

    rows = [json.loads(line) for line in REAL_CCKS.read_text("utf-8").splitlines() if line]
    texts = pd.Series([r["text"] for r in rows])
    ids = pd.Series([r["text_id"] for r in rows])
    split = assign_split(ids, 9, 0, texts=texts)
    stats = duplicate_stats(texts, split)
    assert stats["duplicate_rows"] == int(texts.duplicated().sum()) == 7
    assert stats["cross_split_texts"] == 0
