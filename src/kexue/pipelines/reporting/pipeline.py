"""``reporting``: a section node per pipeline family, then one assembling node. Every node is
tagged ``reporting``; :class:`kexue.hooks.ReportingHooks` registers the run header
(``report_run_info``) and ``None`` for inputs no run has written ("not run" sections)."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.reporting import nodes as n
from kexue.reporting import families as f
from kexue.reporting.inputs import REPORT_TAG, RUN_INFO

# (family, section function, its inputs after the run header)
SECTIONS = [
    ("image_ingest", f.image_ingest,
     ["image_ingest_report", "image_rejects", "image_preview"]),
    ("tricks", f.tricks,
     ["tricks_metrics", "tricks_history", "tricks_curves", "tricks_report"]),
    ("vqvae", n.vqvae_section,
     ["vqvae_metrics", "vqvae_history", "vqvae_prior_history", "vqvae_reconstructions",
      "vqvae_samples", "vqvae_report"]),
    ("nvae", f.nvae,
     ["nvae_metrics", "nvae_kl_per_group", "nvae_samples", "nvae_model", "nvae_baseline",
      "nvae_report"]),
    ("ccks_ingest", f.ccks_ingest, ["ccks_ingest_report", "ccks_rejects"]),
    ("entity_linking", f.entity_linking,
     ["entity_linking_metrics", "entity_linking_model", "entity_linking_report"]),
    ("corpus_ingest", f.corpus_ingest, ["corpus_ingest_report", "title_rejects"]),
    ("title_generation", n.title_generation_section,
     ["title_generation_metrics", "title_generation_samples", "title_gen_l2r_model",
      "title_gen_r2l_model", "title_gen_bidirectional_model", "title_gen_second_pass_model",
      "title_generation_report", "params:reporting"]),
    ("text_classification", f.text_classification,
     ["textcls_ingest_report", "textcls_rejects", "textcls_metrics", "textcls_seeds_plot",
      "textcls_report"]),
    ("retraining", n.retraining_section,
     ["retrain_tricks_report", "retrain_entity_linking_report",
      "retrain_title_generation_report"]),
]


def create_pipeline(**kwargs) -> Pipeline:
    """Section nodes (``report_<family>_section_node``) and ``assemble_report_node``."""
    nodes = [Node(fn, inputs=[RUN_INFO, *ins], outputs=f"report_section_{family}",
                  name=f"report_{family}_section_node") for family, fn, ins in SECTIONS]
    nodes.append(Node(n.assemble_report,
                      inputs=[RUN_INFO, "params:reporting",
                              *(f"report_section_{family}" for family, _, _ in SECTIONS)],
                      outputs=["report_html", "report_md", "report_figures"],
                      name="assemble_report_node"))
    return Pipeline(nodes, tags=[REPORT_TAG])
