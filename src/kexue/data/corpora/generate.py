"""Embedded default corpus: templated Chinese "abstracts" -> titles (no download needed).

Each pair is built from four key phrases: a research *object* (遥感影像), a *task* (图像分割),
a *method* (图神经网络) and a *goal* verb (优化). The abstract states them in separate sentences
in shuffled order, mixed with distractor sentences that mention *other* methods, objects and tasks
(已有研究多采用强化学习...). The title is a fixed recombination in a different order::

    title = "基于" + method + "的" + object + task + goal
    e.g.    基于图神经网络的遥感影像图像分割优化

So a model must copy the right phrases (not the distractors) and reorder them: the method comes
first in the title but late in the abstract, and the final goal word is only signalled by a cue
sentence that can appear anywhere. Titles are ~11-20 chars, abstracts ~50-150 chars; the mapping is
deterministic, hence learnable by a small CPU model in minutes.

Example:
    >>> pairs = generate_title_pairs(3, seed=0)
    >>> len(pairs), all(t.startswith("基于") for t, _ in pairs)
    (3, True)
"""

from __future__ import annotations

import random
from collections.abc import Iterator

METHODS = ("图神经网络", "注意力机制", "对比学习", "变分推断", "强化学习", "卷积网络", "知识蒸馏",
           "迁移学习", "生成对抗网络", "贝叶斯优化", "稀疏编码", "元学习", "随机森林", "谱聚类",
           "扩散模型", "胶囊网络", "自编码器", "多任务学习")
OBJECTS = ("遥感影像", "低资源语言", "方言语音", "城市路网", "医学影像", "电力负荷", "社交网络",
           "金融时序", "蛋白质", "工业零件", "法律文书", "农作物", "气象雷达", "古籍文本",
           "用户评论", "交通视频")
TASKS = ("图像分割", "文本分类", "序列标注", "异常检测", "目标跟踪", "关系抽取", "流量预测",
         "结构预测", "缺陷识别", "语义匹配", "情感分析", "聚类分析")
# goal word (title ending) -> cue phrases that may signal it in the abstract
GOALS = {
    "优化": ("以优化现有系统为目标", "重点在于优化整体性能"),
    "研究": ("对该问题展开系统研究", "本文对此进行深入研究"),
    "改进": ("旨在改进已有方案的不足", "着力改进传统流程"),
    "加速": ("主要目的是加速推理过程", "希望显著加速计算"),
    "建模": ("核心工作是对其进行建模", "提出统一的建模框架"),
    "评估": ("并给出全面的评估方案", "重点是建立可靠的评估"),
}
FILLERS = ("实验在多个公开数据集上进行。", "结果表明所提方法明显优于基线。",
           "代码与数据将在论文发表后公开。", "该问题长期受到学术界和工业界关注。",
           "消融实验验证了各模块的有效性。", "此外还讨论了方法的局限性。")

_TOPIC_TEMPLATES = ("{obj}{task}是一个重要而困难的问题。", "本文关注{obj}上的{task}任务。",
                    "针对{obj}的{task}，现有方法仍有不足。")
_METHOD_TEMPLATES = ("本文提出一种基于{m}的新方法。", "我们采用{m}构建模型。",
                     "方法上，本文以{m}为核心。")
_DISTRACTOR_TEMPLATES = ("已有研究多采用{m}，效果有限。", "与{obj}上的{task}不同，",
                         "{m}在{obj}中也有应用。", "以往的{task}工作忽视了这一点。")


def _combo(index: int) -> tuple[str, str, str, str]:
    """The ``index``-th (method, object, task, goal) of the full product (mixed radix)."""
    goals = sorted(GOALS)
    index, g = divmod(index, len(goals))
    index, t = divmod(index, len(TASKS))
    m, o = divmod(index, len(OBJECTS))
    return METHODS[m], OBJECTS[o], TASKS[t], goals[g]


N_COMBOS = len(METHODS) * len(OBJECTS) * len(TASKS) * len(GOALS)


def _pair(rng: random.Random, combo: tuple[str, str, str, str]) -> tuple[str, str]:
    method, obj, task, goal = combo
    other_m = rng.choice([m for m in METHODS if m != method])
    other_o = rng.choice([o for o in OBJECTS if o != obj])
    other_t = rng.choice([t for t in TASKS if t != task])

    topic = rng.choice(_TOPIC_TEMPLATES).format(obj=obj, task=task)
    meth = rng.choice(_METHOD_TEMPLATES).format(m=method)
    cue = rng.choice(GOALS[goal]) + "。"
    distract = [t.format(m=other_m, obj=other_o, task=other_t)
                for t in rng.sample(_DISTRACTOR_TEMPLATES, rng.randint(1, 2))]
    fillers = rng.sample(FILLERS, rng.randint(0, 2))
    # the topic sentence comes first or second; the rest is shuffled around it
    rest = [meth, cue, *distract, *fillers]
    rng.shuffle(rest)
    rest.insert(rng.randint(0, 1), topic)
    source = "".join(rest)
    title = f"基于{method}的{obj}{task}{goal}"
    return title, source


def generate_title_pairs(n_pairs: int = 3000, seed: int = 0) -> list[tuple[str, str]]:
    """Return ``n_pairs`` deterministic ``(title, source)`` pairs for ``seed``.

    Every pair has a different (method, object, task, goal), hence a different title, while
    ``n_pairs`` is at most the number of combinations (20,736): no title repeats, so no test
    title can be memorised from train (a sampled-with-replacement corpus of 3,000 repeated 14%
    of its test titles). Beyond that, combinations repeat in a second pass.

    Args:
        n_pairs: Number of pairs (a few thousand is enough for CPU training).
        seed: Seed of the private ``random.Random``; same seed -> same pairs.
    """
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    rng = random.Random(seed)
    used: set[int] = set()
    pairs = []
    for _ in range(n_pairs):          # one pair at a time: a prefix of a longer corpus
        if len(used) == N_COMBOS:
            used.clear()
        i = rng.randrange(N_COMBOS)
        while i in used:
            i = rng.randrange(N_COMBOS)
        used.add(i)
        pairs.append(_pair(rng, _combo(i)))
    return pairs


def default_title_lines(n_pairs: int = 3000, seed: int = 0) -> Iterator[str]:
    """The default corpus as CLGE-CSL ``title<TAB>abstract`` lines (usable as a fallback)."""
    for title, source in generate_title_pairs(n_pairs, seed):
        yield f"{title}\t{source}\n"
