"""A deterministic synthetic knowledge base shaped like CCKS2019 ``kb_data``.

The :class:`World` is what the embedded-default generator (:mod:`kexue.data.ccks.generate`)
renders into ``kb_data`` / ``train.json`` / ``develop.json`` lines. It is rebuilt from
``(n_entities, seed)`` and cached, so the three files always describe the SAME world.

What makes the task non-trivial:

* **Shared names.** A name such as ``黎明`` belongs to a person, a film and a town at once;
  their descriptions use type-specific predicates (职业/出生地 vs 导演/类型 vs 所属地区/气候).
* **Context cues.** Every entity keeps ``cues``: words taken from its own description (its
  occupation, genre, province ...). Texts about the entity use them, so contexts disambiguate.
* **Overlapping names.** Towns get stations and universities (``南京`` / ``南京南站`` /
  ``南京大学``) for max-matching.
* **Common words.** ``下载``, ``在线``, ``观看`` ... are KB entities (type Vocabulary) appearing in
  many texts but annotated only with a small per-word probability (``label_p``).
* **Aliases.** Nicknames, ``《title》`` forms, upper-case product names (lower-cased by el.py).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from kexue.data.ccks import vocab as V


@dataclass(frozen=True)
class Entity:
    """One KB entity. ``data`` is the (predicate, object) list in kb_data order."""

    sid: str
    name: str
    kind: str  # person | work | place | station | org | thing | vocab
    types: tuple[str, ...]
    aliases: tuple[str, ...]
    data: tuple[tuple[str, str], ...]
    cues: tuple[str, ...]  # context words taken from the entity's own description
    label_p: float = 1.0  # probability that annotators label an occurrence
    attrs: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class World:
    """All entities plus lookup tables used to render texts."""

    entities: tuple[Entity, ...]
    by_kind: dict[str, tuple[int, ...]]
    by_name: dict[str, tuple[int, ...]]
    shared: tuple[int, ...]  # indices of entities whose name is shared with another kind
    common: dict[str, int]  # common word -> index of its Vocabulary entity
    nil_names: tuple[str, ...]  # person names / titles that are NOT in the KB


def _person_name(rng: random.Random) -> str:
    given = rng.choice(V.GIVEN_CHARS)
    if rng.random() < 0.6:
        given += rng.choice(V.GIVEN_CHARS)
    return rng.choice(V.SURNAMES) + given


def _title(rng: random.Random) -> str:
    a, b = rng.sample(V.TITLE_WORDS, 2)
    return a + rng.choice(V.TITLE_JOINERS) + b


def _place_name(rng: random.Random) -> str:
    return "".join(rng.sample(V.PLACE_CHARS, 2 if rng.random() < 0.8 else 3))


def _thing_name(rng: random.Random) -> str:
    brand = rng.choice(V.BRANDS)
    model = rng.choice("gxspmr") + str(rng.randint(1, 30))
    return f"{brand} {model}".upper()


def _abstract(rng: random.Random, core: str, n_filler: int) -> str:
    return core + "".join(rng.choice(V.FILLER_SENTENCES) for _ in range(n_filler))


class _Builder:
    """Accumulates entities; names for cross-references are drawn before descriptions."""

    def __init__(self, rng: random.Random, n_filler: int) -> None:
        self.rng = rng
        self.n_filler = n_filler
        self.entities: list[Entity] = []
        self.person_names: list[str] = []
        self.place_names: list[str] = []
        self.work_names: list[str] = []

    def add(self, **kw: object) -> int:
        sid = str(len(self.entities) + 1)
        self.entities.append(Entity(sid=sid, **kw))  # type: ignore[arg-type]
        return len(self.entities) - 1

    def year(self) -> str:
        return str(self.rng.randint(1950, 2018))

    def person(self, name: str) -> int:
        r = self.rng
        occ = r.choice(V.OCCUPATIONS)
        nat, eth = r.choice(V.NATIONALITIES), r.choice(V.ETHNICITIES)
        born = r.choice(self.place_names)
        work = r.choice(self.work_names)
        sex = r.choice("男女")
        data = [("摘要", _abstract(r, f"{name}，{nat}{occ}，出生于{born}，代表作品有《{work}》等。",
                                   self.n_filler)),
                ("中文名", name), ("国籍", nat), ("民族", eth), ("出生地", born),
                ("出生日期", f"{self.year()}年{r.randint(1, 12)}月{r.randint(1, 28)}日"),
                ("职业", occ), ("性别", sex), ("代表作品", f"《{work}》")]
        if r.random() < 0.5:
            data.append(("主要成就", r.choice(V.ACHIEVEMENTS)))
        if r.random() < 0.5:
            data.append(("毕业院校", r.choice(self.place_names) + "大学"))
        data.append(("义项描述", f"{nat}{'女' if sex == '女' else ''}{occ}"))
        data += [("标签", t) for t in V.OCCUPATION_TAGS[occ]] + [("标签", "人物")]
        aliases = [name] + ([("小" if r.random() < 0.5 else "阿") + name[-1]]
                            if r.random() < 0.3 else [])
        types = ("Human", "EntertainmentPerson") if occ in ("演员", "歌手", "主持人") else ("Human",)
        return self.add(name=name, kind="person", types=types, aliases=tuple(aliases),
                        data=tuple(data), cues=(occ, born, work),
                        attrs={"occ": occ, "born": born, "work": work})

    def work(self, name: str) -> int:
        r = self.rng
        types, kind_word, tags, pset = r.choice(V.WORK_KINDS)
        genre, year = r.choice(V.GENRES), self.year()
        maker = r.choice(self.person_names)
        data: list[tuple[str, str]]
        if pset == "screen":
            actor = r.choice(self.person_names)
            data = [("摘要", _abstract(r, f"《{name}》是由{maker}执导，{actor}主演的{genre}{kind_word}，"
                                          f"于{year}年上映。", self.n_filler)),
                    ("中文名", name), ("导演", maker), ("主演", actor), ("类型", genre),
                    ("制片地区", r.choice(V.REGIONS)), ("上映时间", f"{year}年"),
                    ("语言", r.choice(V.LANGUAGES))]
            if kind_word == "电视剧":
                data.append(("集数", f"{r.randint(12, 60)}集"))
            desc = f"{year}年{maker}执导的{kind_word}"
        elif pset == "book":
            actor = maker
            data = [("摘要", _abstract(r, f"《{name}》是{maker}创作的{genre}{kind_word}。", self.n_filler)),
                    ("中文名", name), ("作者", maker), ("类型", genre),
                    ("出版社", r.choice(V.PUBLISHERS)), ("出版时间", f"{year}年")]
            desc = f"{maker}创作的{kind_word}"
        else:
            actor = maker
            data = [("摘要", _abstract(r, f"《{name}》是{maker}演唱的歌曲。", self.n_filler)),
                    ("中文名", name), ("歌曲原唱", maker), ("音乐风格", genre),
                    ("发行时间", f"{year}年"), ("歌曲语言", r.choice(V.LANGUAGES))]
            desc = f"{maker}演唱的歌曲"
        data.append(("义项描述", desc))
        data += [("标签", t) for t in tags] + [("标签", f"{genre}{kind_word}")]
        aliases = [name]
        if r.random() < 0.2:
            aliases.append(f"《{name}》")
        return self.add(name=name, kind="work", types=types, aliases=tuple(aliases),
                        data=tuple(data), cues=(genre, kind_word, maker, actor),
                        attrs={"genre": genre, "kind": kind_word, "maker": maker, "actor": actor})

    def place(self, name: str) -> int:
        r = self.rng
        prov, cat = r.choice(V.PROVINCES), r.choice(V.PLACE_CATEGORIES)
        climate, sight = r.choice(V.CLIMATES), name + r.choice(V.SIGHTS)
        data = [("摘要", _abstract(r, f"{name}，隶属于{prov}，是{prov}下辖的{cat}，属{climate}。",
                                   self.n_filler)),
                ("中文名", name), ("所属地区", prov), ("行政区类别", cat),
                ("面积", f"{r.randint(100, 9000)}平方公里"), ("人口", f"{r.randint(5, 900)}万"),
                ("气候条件", climate), ("著名景点", sight), ("义项描述", f"{prov}{cat}"),
                ("标签", "地点"), ("标签", "行政区划")]
        aliases = [name] + ([name + "市"] if cat.endswith("市") else [])
        return self.add(name=name, kind="place", types=("Place",), aliases=tuple(aliases),
                        data=tuple(data), cues=(prov, sight, climate),
                        attrs={"prov": prov, "sight": sight, "climate": climate})

    def station(self, city: str) -> int:
        r = self.rng
        name = city + r.choice(V.STATION_SUFFIXES)
        data = [("摘要", _abstract(r, f"{name}位于{city}，是重要的高铁车站。", self.n_filler)),
                ("中文名", name), ("所属城市", city), ("车站等级", r.choice(("一等站", "二等站", "特等站"))),
                ("义项描述", "火车站"), ("标签", "交通"), ("标签", "火车站")]
        return self.add(name=name, kind="station", types=("Place", "Thing"), aliases=(name,),
                        data=tuple(data), cues=(city, "高铁"), attrs={"city": city})

    def org(self, name: str) -> int:
        r = self.rng
        ind, hq, founder = r.choice(V.INDUSTRIES), r.choice(self.place_names), r.choice(self.person_names)
        nature, year = r.choice(V.ORG_NATURES), self.year()
        data = [("摘要", _abstract(r, f"{name}成立于{year}年，总部位于{hq}，主要从事{ind}业务。",
                                   self.n_filler)),
                ("中文名", name), ("成立时间", f"{year}年"), ("总部地点", hq), ("创始人", founder),
                ("经营范围", ind), ("公司性质", nature), ("义项描述", f"{hq}的{ind}企业"),
                ("标签", "企业"), ("标签", "组织机构")]
        aliases = [name] + ([name[:2]] if len(name) > 3 and r.random() < 0.3 else [])
        return self.add(name=name, kind="org", types=("Organization",), aliases=tuple(aliases),
                        data=tuple(data), cues=(ind, hq, founder),
                        attrs={"ind": ind, "hq": hq, "founder": founder, "year": year})

    def thing(self, name: str) -> int:
        r = self.rng
        brand, kind = name.split()[0], r.choice(V.PRODUCT_KINDS)
        data = [("摘要", _abstract(r, f"{name}是{brand}公司推出的一款{kind}。", self.n_filler)),
                ("中文名", name), ("品牌", brand), ("产品类型", kind),
                ("上市时间", f"{r.randint(2010, 2018)}年"), ("义项描述", f"{brand}{kind}"),
                ("标签", "数码产品"), ("标签", kind)]
        return self.add(name=name, kind="thing", types=("Thing",), aliases=(name, name.lower()),
                        data=tuple(data), cues=(kind, brand.lower()), attrs={"kind": kind})

    def vocab(self, word: str, label_p: float) -> int:
        r = self.rng
        gloss = r.choice(V.COMMON_GLOSSES)
        data = (("摘要", _abstract(r, f"{word}，{gloss}，指日常生活中常用的说法。", self.n_filler)),
                ("中文名", word), ("词性", r.choice(V.POS_TAGS)), ("义项描述", gloss),
                ("标签", "词语"))
        return self.add(name=word, kind="vocab", types=("Vocabulary",), aliases=(word,),
                        data=data, cues=(), label_p=label_p)


def _unique(make, rng: random.Random, n: int, taken: dict[str, None]) -> list[str]:
    """``n`` names from ``make(rng)``, avoiding ``taken`` (duplicates only when exhausted)."""
    out = []
    for _ in range(n):
        for _attempt in range(8):
            name = make(rng)
            if name not in taken:
                break
        taken[name] = None
        out.append(name)
    return out


@functools.lru_cache(maxsize=4)
def build_world(n_entities: int = 3000, seed: int = 0, n_filler: int = 1) -> World:
    """Build (and cache) the synthetic world of ``n_entities`` entities for ``seed``.

    Args:
        n_entities: Approximate KB size (at least 200; the common words are always included).
        seed: Random seed; the same arguments always give the same world.
        n_filler: Filler sentences appended to each 摘要 (the benchmark uses more, to reach the
            real ~900 bytes per kb_data line).
    """
    if n_entities < 200:
        raise ValueError(f"n_entities={n_entities} is too small for the CCKS default world. "
                         "Fix: use n_entities >= 200 in the ccks fallback_args.")
    rng = random.Random(seed)
    b = _Builder(rng, n_filler)
    taken: dict[str, None] = {}
    n_shared = max(10, n_entities // 40)
    shared_names = list(V.SHARED_NAME_WORDS[:n_shared])
    shared_names += _unique(lambda r: "".join(r.sample(V.SHARED_NAME_WORDS, 2)), rng,
                            n_shared - len(shared_names), dict.fromkeys(shared_names))
    taken.update(dict.fromkeys(shared_names))
    n_place = n_entities // 10
    b.place_names = _unique(_place_name, rng, n_place, taken)
    b.person_names = _unique(_person_name, rng, int(n_entities * 0.30), taken)
    b.work_names = _unique(_title, rng, int(n_entities * 0.22), taken)
    org_names = [p + rng.choice(V.INDUSTRIES[:3]) + rng.choice(V.ORG_SUFFIXES)
                 for p in rng.choices(b.place_names, k=n_entities // 16)]
    thing_names = _unique(_thing_name, rng, n_entities // 30, taken)
    nil_names = _unique(_person_name, rng, max(20, n_entities // 30), taken)
    nil_names += _unique(_title, rng, max(20, n_entities // 30), taken)

    common = {w: b.vocab(w, p) for w, p in V.COMMON_WORDS}
    for name in b.place_names:
        b.place(name)
        if rng.random() < 0.3:
            b.station(name)
        if rng.random() < 0.15:
            b.org(name + "大学")
    for name in b.person_names:
        b.person(name)
    for name in b.work_names:
        b.work(name)
    for name in org_names:
        b.org(name)
    for name in thing_names:
        b.thing(name)
    shared_idx: list[int] = []
    makers = {"person": b.person, "work": b.work, "place": b.place, "org": b.org}
    for name in shared_names:  # 2-4 entities of DIFFERENT kinds share the name
        for kind in rng.sample(list(makers), rng.randint(2, 4)):
            shared_idx.append(makers[kind](name))
    while len(b.entities) < n_entities:  # top up with more persons / works (same-type homonyms)
        (b.person if rng.random() < 0.5 else b.work)(
            rng.choice(b.person_names) if rng.random() < 0.5 else _person_name(rng))

    by_kind: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for i, e in enumerate(b.entities):
        by_kind.setdefault(e.kind, []).append(i)
        by_name.setdefault(e.name, []).append(i)
    return World(entities=tuple(b.entities),
                 by_kind={k: tuple(v) for k, v in by_kind.items()},
                 by_name={k: tuple(v) for k, v in by_name.items()},
                 shared=tuple(shared_idx), common=common, nil_names=tuple(nil_names))


def pick(rng: random.Random, seq: Sequence[int]) -> int:
    """Uniform choice that also works for tuples of indices."""
    return seq[rng.randrange(len(seq))]
