"""Embedded default for CCKS2019 entity linking: ``kb_data``, ``train.json``, ``develop.json`` lines.

Used as the ``fallback`` of the raw ``kexue.io.TextLinesDataset`` entries when the official files
are absent. The three generators rebuild the same cached :func:`~kexue.data.ccks.world.build_world`
from ``(n_entities, seed)``, so mentions in the texts link to entities of the generated KB.
Lines follow the official format exactly (``offset`` is a string, ``kb_id`` may be ``"NIL"``).

Texts are short titles/sentences (like the real ones: ~20 chars) built from per-type templates:

* the focal entity's name plus cue words from its own description (disambiguating context);
  30% of texts focus on an entity whose name is shared with other entity types;
* common words (下载, 在线, 观看 ...) that are KB entities but labelled only with their small
  ``label_p`` (annotator behaviour);
* NIL mentions: names that are not in the KB (labelled ``"NIL"``), and rarely a KB name labelled
  NIL.

Example:
    >>> lines = list(default_train_lines(n_texts=3, n_entities=300, seed=0))
    >>> import json; sorted(json.loads(lines[0]))
    ['mention_data', 'text', 'text_id']
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

from kexue.data.ccks import vocab as V
from kexue.data.ccks.world import Entity, World, build_world, pick

__all__ = ["default_develop_lines", "default_kb_lines", "default_train_lines", "kb_line"]


def kb_line(e: Entity) -> str:
    """Render one entity as a ``kb_data`` JSON line (official key order)."""
    return json.dumps({"alias": list(e.aliases), "subject_id": e.sid, "subject": e.name,
                       "type": list(e.types),
                       "data": [{"predicate": p, "object": o} for p, o in e.data]},
                      ensure_ascii=False)


def default_kb_lines(n_entities: int = 3000, seed: int = 0, n_filler: int = 1) -> Iterator[str]:
    """Yield the embedded default ``kb_data`` lines (one JSON object per entity).

    Args:
        n_entities: KB size.
        seed: World seed (must match the one given to the train/develop generators).
        n_filler: Filler sentences per 摘要 (larger for realistic line sizes in benchmarks).
    """
    for e in build_world(n_entities, seed, n_filler).entities:
        yield kb_line(e)


class _Text:
    """Concatenate segments while recording labelled mentions with their char offsets."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.w, self.rng = world, rng
        self.parts: list[str] = []
        self.n = 0
        self.mentions: list[tuple[str, int, str]] = []

    def plain(self, s: str) -> _Text:
        self.parts.append(s)
        self.n += len(s)
        return self

    def link(self, s: str, kb_id: str, p: float = 1.0) -> _Text:
        if self.rng.random() < p:
            self.mentions.append((s, self.n, kb_id))
        return self.plain(s)

    def focal(self, e: Entity, surface: str | None = None) -> _Text:
        """The text's subject: labelled with its id (2% of the time as NIL, like real data)."""
        return self.link(surface or e.name, "NIL" if self.rng.random() < 0.02 else e.sid)

    def word(self, s: str) -> _Text:
        """A word that may be a KB entity: common words use their label_p, names of one
        entity are labelled half of the time, ambiguous or unknown words are left plain."""
        if s in self.w.common:
            e = self.w.entities[self.w.common[s]]
            return self.link(s, e.sid, e.label_p)
        ids = self.w.by_name.get(s, ())
        if len(ids) == 1:
            return self.link(s, self.w.entities[ids[0]].sid, 0.5)
        return self.plain(s)

    def words(self, *ws: str) -> _Text:
        for s in ws:
            self.word(s)
        return self

    def nil(self) -> _Text:
        """A name that is not in the KB, labelled NIL 80% of the time."""
        name = self.rng.choice(self.w.nil_names)
        return self.link(name, "NIL", 0.8)


def _compose(world: World, rng: random.Random) -> _Text:
    """One text about a random focal entity (30% from the shared-name ones)."""
    ents = world.entities
    if world.shared and rng.random() < 0.3:
        e = ents[pick(rng, world.shared)]
    else:
        kinds = ("person", "work", "work", "place", "station", "org", "thing")
        e = ents[pick(rng, world.by_kind[rng.choice(kinds)])]
    t, a, r = _Text(world, rng), e.attrs, rng.random()
    t.plain(rng.choice(V.TEXT_PREFIXES))
    if e.kind == "person":
        if r < 0.3:
            t.focal(e).plain("：").word(a["born"]).plain("出生的").word(a["occ"]).plain("，代表作《")
            t.word(a["work"]).plain("》")
        elif r < 0.5:
            t.focal(e).plain("扮演者").nil().plain("评《").word(a["work"]).plain("》")
        elif r < 0.75:
            t.word(a["occ"]).focal(e).plain("近照曝光").words("最新", "图片")
        else:
            t.focal(e).plain("主演的《").word(a["work"]).plain("》").words("高清", "视频", "在线", "观看")
    elif e.kind == "work":
        if r < 0.35:
            t.plain("《").focal(e).plain("》").words("迅雷", "下载").plain("/")
            t.word(rng.choice(("完整版", "免费", ""))).words("在线", "观看").plain(" -")
            kind = "美剧" if a["kind"] == "电视剧" and rng.random() < 0.3 else a["kind"]
            t.word(a["genre"]).plain("/").word(kind)
        elif r < 0.6:
            t.plain("《").focal(e).plain("》").word("全集").plain("_").word(a["kind"])
            t.words("在线", "播放").plain("_").word(a["maker"]).plain("执导")
        elif r < 0.8:
            t.plain("解读《").focal(e).plain("》：").word(a["genre"]).word(a["kind"])
        else:
            t.word(a["actor"]).plain("主演").word(a["kind"]).plain("《").focal(e).plain("》")
            t.words("剧情", "简介")
    elif e.kind == "place":
        if r < 0.4:
            t.focal(e).word(a["sight"]).words("旅游", "攻略")
        elif r < 0.7:
            t.focal(e).plain("位于").word(a["prov"]).plain("，属于").word(a["climate"])
        else:
            t.plain("坐").word("高铁").plain("去").focal(e).plain("，").word(a["sight"]).plain("值得一看")
    elif e.kind == "station":
        if r < 0.5:
            t.focal(e).plain(":坐").word("高铁").plain("在").focal(e).plain("下。").focal(e)
        else:
            t.word(a["city"]).focal(e).words("最新").plain("列车时刻表")
    elif e.kind == "org":
        if r < 0.4:
            t.focal(e).plain(f"成立于{a['year']}年，总部位于").word(a["hq"])
        elif r < 0.7:
            t.word(a["founder"]).plain("创办的").focal(e).word(a["ind"]).plain("业务").word("介绍")
        else:
            t.focal(e).word("官网").plain("：").word(a["ind"]).plain("新闻")
    else:  # thing: the text uses the lower-cased name ("lg g5 评测")
        t.focal(e, e.name.lower()).plain(" ").word("评测").plain(":").word(a["kind"])
        if r < 0.3:
            t.plain("，").nil()
        else:
            t.plain("性价比如何")
    number = rng.choice(V.TEXT_NUMBERED).format(n=rng.randint(1, 60), year=rng.randint(1990, 2019))
    return t.plain(number + rng.choice(V.TEXT_TAILS))


def _texts(n_texts: int, n_entities: int, seed: int, stream: int, start_id: int,
           labelled: bool, n_filler: int = 1) -> Iterator[str]:
    world = build_world(n_entities, seed, n_filler)
    rng = random.Random(seed * 1_000_003 + stream)
    for i in range(n_texts):
        t = _compose(world, rng)
        rec: dict[str, object] = {"text_id": str(start_id + i), "text": "".join(t.parts)}
        if labelled:
            rec["mention_data"] = [{"kb_id": k, "mention": m, "offset": str(o)}
                                   for m, o, k in t.mentions]
        yield json.dumps(rec, ensure_ascii=False)


def default_train_lines(n_texts: int = 6000, n_entities: int = 3000,
                        seed: int = 0, n_filler: int = 1) -> Iterator[str]:
    """Yield the embedded default ``train.json`` lines (text_id from "1"); ``n_filler`` must
    match the ``kb_data`` generator's (the world, hence the texts, depend on it)."""
    yield from _texts(n_texts, n_entities, seed, stream=1, start_id=1, labelled=True,
                      n_filler=n_filler)


def default_develop_lines(n_texts: int = 1000, n_entities: int = 3000,
                          seed: int = 0, n_filler: int = 1) -> Iterator[str]:
    """Yield the embedded default ``develop.json`` lines (``text_id`` and ``text`` only);
    ``n_filler`` as for :func:`default_train_lines`."""
    yield from _texts(n_texts, n_entities, seed, stream=2, start_id=1_000_001, labelled=False,
                      n_filler=n_filler)
