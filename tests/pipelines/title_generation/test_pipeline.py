"""title_generation nodes on hand-made data, and a fast end-to-end Kedro run."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from kexue.data.corpora.vocab import CharVocab
from kexue.pipelines.title_generation import nodes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY_MODEL = {"emb_dim": 8, "enc_hidden": 4, "dec_hidden": 8, "heads": 2, "head_dim": 4,
              "smln_hidden": 4, "out_dim": 8}
TINY = {
    "cpu_threads": 1,
    "data": {"max_source_len": 24, "max_target_len": 6, "batch_size": 8, "max_eval_examples": 6},
    "model": TINY_MODEL,
    "trainer": {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1,
                "accelerator": "cpu"},
    "second_pass": {"enabled": True, "max_epochs": 1},
    "decode": {"beam_size": 2, "max_len": 7, "batch_size": 4, "n_samples": 3},
}


def pairs() -> tuple[pd.DataFrame, dict]:
    rows = []
    for i, (src, tgt) in enumerate([("本文研究图像分割方法", "图像分割"), ("提出文本分类模型", "文本分类"),
                                    ("关于图像分类的研究", "图像分类"), ("文本分割新方法", "文本分割")]):
        for split in ("train", "dev", "test"):
            rows.append({"pair_id": f"{split}{i}", "source": src, "target": tgt, "split": split,
                         "file": "f", "line": i})
    df = pd.DataFrame(rows)
    vocab = CharVocab.from_texts(df.loc[df.split == "train", "source"].tolist()
                                 + df.loc[df.split == "train", "target"].tolist())
    return df, vocab.to_dict()


def params(**over) -> dict:
    p = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    p.update(over)
    return p


def test_encode_title_pairs_encodes_and_caps_splits():
    df, vocab = pairs()
    enc = nodes.encode_title_pairs(df, vocab, {"max_source_len": 4, "max_target_len": 3,
                                               "max_eval_examples": 2})
    v = CharVocab.from_dict(vocab)
    assert enc["vocab_size"] == len(v)
    assert len(enc["splits"]["train"]["x"]) == 4 and len(enc["splits"]["test"]["x"]) == 2
    assert enc["splits"]["train"]["x"][0] == v.encode("本文研究")
    assert enc["splits"]["train"]["title"][0] == v.encode("图像分")
    with pytest.raises(ValueError, match="corpus_ingest"):
        nodes.encode_title_pairs(df.drop(columns=["split"]), vocab, {})
    with pytest.raises(ValueError, match="max_source_len"):
        nodes.encode_title_pairs(df, vocab, {"max_source_len": 0})


def test_unknown_parameter_fails_fast_naming_the_key():
    df, vocab = pairs()
    enc = nodes.encode_title_pairs(df, vocab, TINY["data"])
    with pytest.raises(ValueError, match="title_generation.bogus"):
        nodes.train_title_l2r_baseline(enc, params(bogus=1), 0)
    with pytest.raises(ValueError, match="emb_size"):
        nodes.train_title_r2l_baseline(enc, params(model={"emb_size": 3}), 0)


def test_nodes_train_evaluate_and_report_on_hand_made_data():
    df, vocab = pairs()
    enc = nodes.encode_title_pairs(df, vocab, TINY["data"])
    p = params()
    l2r = nodes.train_title_l2r_baseline(enc, p, 0)
    r2l = nodes.train_title_r2l_baseline(enc, p, 0)
    bidi = nodes.train_title_bidirectional(enc, p, 0)
    for bundle, d in ((l2r, "l2r"), (r2l, "r2l")):
        assert bundle["kind"] == f"{d}_baseline" and bundle["config"]["cross_attention"] is False
        assert bundle["history"]["directions"] == d
    assert bidi["config"]["cross_attention"] is True and bidi["history"]["directions"] == "both"
    # independent models: different encoder weights; each one's untrained decoder keeps its init
    enc_key = next(k for k in l2r["state_dict"] if k.startswith("encoder."))
    assert not torch.equal(l2r["state_dict"][enc_key], r2l["state_dict"][enc_key])
    import lightning as L

    from kexue.models.title_gen.config import Seq2SeqConfig
    from kexue.models.title_gen.model import Seq2Seq
    L.seed_everything(0, verbose=False)  # the training node's seed -> the same initial weights
    init = Seq2Seq(Seq2SeqConfig(**l2r["config"])).state_dict()
    for bundle, untrained, trained in ((l2r, "r2l", "l2r"), (r2l, "l2r", "r2l")):
        sd = bundle["state_dict"]
        assert all(torch.equal(sd[k], init[k]) for k in sd if k.startswith(f"decoders.{untrained}."))
        assert not all(torch.equal(sd[k], init[k]) for k in sd if k.startswith(f"decoders.{trained}."))
    off = nodes.train_title_second_pass(bidi, enc, params(second_pass={"enabled": False}), 0)
    assert off == {"kind": "disabled"}
    metrics, samples, leakage = nodes.evaluate_title_generation(l2r, r2l, bidi, off, enc, vocab, p)
    assert metrics[["model", "method"]].values.tolist() == [
        ["l2r_baseline", "l2r_greedy"], ["l2r_baseline", "l2r_beam"], ["r2l_baseline", "r2l_beam"],
        ["bidirectional", "bidi_beam"]]
    # time ratios: each row's seconds per example over the L2R beam row's (recomputed here)
    base = metrics.loc[metrics.method == "l2r_beam", "sec_per_example"].item()
    assert base > 0 and (metrics["sec_per_example"] > 0).all()
    assert metrics["time_ratio_vs_l2r_beam"].tolist() == pytest.approx(
        (metrics["sec_per_example"] / base).tolist(), rel=1e-12)
    assert (metrics["n"] == 4).all() and len(samples) == 3
    assert {"baseline", "bidirectional"} <= set(leakage)
    assert "l2r_baseline" not in leakage and "r2l_baseline" not in leakage
    assert "generated_context" in leakage["bidirectional"]
    # baseline row = CE_l2r of the L2R model and CE_r2l of the R2L model (trained directions only)
    from kexue.models.title_gen.batching import TitleDataset
    from kexue.models.title_gen.module import evaluate_ce
    from kexue.models.title_gen.training import from_bundle, make_loader
    loader = make_loader(TitleDataset(enc["splits"]["test"]["x"], enc["splits"]["test"]["title"]),
                         8, False)
    expect = {"ce_l2r": evaluate_ce(from_bundle(l2r), loader)["ce_l2r"],
              "ce_r2l": evaluate_ce(from_bundle(r2l), loader)["ce_r2l"]}
    assert leakage["baseline"]["gold_context"] == pytest.approx(expect)
    lead = nodes.lead_n_baseline(enc, p)
    # by hand, mean ROUGE-L F1 = mean 2*LCS/(n+4) over the 4 pairs: n=5 .611, n=6 (2+4+4+4)/10/4
    # = .700, n=7 .682, n=8 .667 -> N = 6; test holds the same 4 pairs
    assert lead["enabled"] and lead["n"] == 6 and lead["test"]["n"] == 4
    assert lead["dev_rouge_l"] == pytest.approx(70.0) and lead["test"]["rouge_l"] == pytest.approx(70.0)
    report = nodes.report_title_generation(metrics, samples, leakage, df, p, "RUN-123", lead)
    assert "RUN-123" in report and "## Verdict" in report and "Leakage" in report
    assert "## Lead-N baseline" in report and f"| lead-{lead['n']} |" in report
    assert nodes.lead_n_baseline(enc, params(lead={"enabled": False})) == {"enabled": False}
    # the split overlap section: share of test titles seen verbatim as train titles, by hand
    train_titles = set(df.loc[df["split"] == "train", "target"])
    test_titles = df.loc[df["split"] == "test", "target"]
    share = 100 * sum(t in train_titles for t in test_titles) / len(test_titles)
    assert f"train title: **{share:.1f}%**" in report


@pytest.mark.slow
def test_end_to_end_corpus_ingest_and_title_generation(kedro_project, kedro_run):
    (kedro_project / "src").mkdir(exist_ok=True)  # bootstrap_project wants a source dir
    kedro_run(kedro_project, ["corpus_ingest", "title_generation"], runtime_params={
        "corpus_ingest": {"default": {"n_pairs": 80}},
        "title_generation": TINY,
    })
    out = kedro_project / "data" / "08_reporting"
    metrics = pd.read_csv(out / "title_generation_metrics.csv")
    assert set(metrics["method"]) == {"l2r_greedy", "l2r_beam", "r2l_beam", "bidi_beam"}
    assert set(metrics["model"]) == {"l2r_baseline", "r2l_baseline", "bidirectional",
                                     "bidirectional_2pass"}
    assert metrics[["rouge_1", "rouge_l", "bleu"]].ge(0).all().all()
    assert len(pd.read_csv(out / "title_generation_samples.csv")) == 3
    report = (out / "title_generation_report.md").read_text()
    assert "Kedro run id: `" in report and "unknown" not in report.split("\n")[2]
    assert "## Split overlap" in report and "Sources in more than one split: 0" in report
    for name in ("title_gen_l2r_baseline.pt", "title_gen_r2l_baseline.pt", "title_gen_bidirectional.pt",
                 "title_gen_bidirectional_2pass.pt"):
        assert (kedro_project / "data" / "06_models" / name).is_file()


def test_toolkit_options_adafactor_fgm_accumulation_train():
    """AdaFactor + FGM on the shared embedding (``model.embedding``) + accumulation through the
    node: 4 micro-batches of 1 with k=2 over 2 epochs = exactly 4 optimizer steps, and the
    options change the weights (vs the same node with plain Adam). The exact update of this
    combination is checked against a hand reference in tests/models/test_title_gen_toolkit.py."""
    df, vocab = pairs()
    enc = nodes.encode_title_pairs(df, vocab, TINY["data"])
    trainer = {**TINY["trainer"], "max_epochs": 2, "limit_train_batches": 1.0,
               "accumulate_grad_batches": 2}
    data = {**TINY["data"], "batch_size": 1}
    p = params(optimizer={"name": "adafactor", "lr": 1e-2},
               adversarial={"method": "fgm", "epsilon": 0.5, "embedding": "model.embedding"},
               trainer=trainer, data=data)
    bundle = nodes.train_title_bidirectional(enc, p, 0)
    assert bundle["history"]["steps"] == 4                      # ceil(4 / 2) * 2 epochs
    plain = nodes.train_title_bidirectional(enc, params(trainer=trainer, data=data), 0)
    assert plain["history"]["steps"] == 4
    diff = max(float((bundle["state_dict"][k] - plain["state_dict"][k]).abs().max())
               for k in bundle["state_dict"] if bundle["state_dict"][k].is_floating_point())
    assert diff > 1e-4
