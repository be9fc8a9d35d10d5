"""``tricks``: images of ``image_ingest`` (train / test splits) -> one training node per run ->
evaluate -> curves and report. Run it with ``--pipelines image_ingest,tricks``, or the default."""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.tricks.nodes import (
    evaluate_runs,
    plot_curves,
    select_images,
    train_run,
    write_report,
)

# Every run is declared under params:tricks.runs.<name>; evaluate_runs fails if the two differ.
RUNS = ("adam_bs1", "adam_bs1_accum100", "adam_bs100", "adafactor_bs100", "adafactor_bs100_lr1e2")


def _train_node(run: str) -> Node:
    func = update_wrapper(partial(train_run, run_name=run), train_run)
    return Node(
        func,
        inputs=["tricks_train", "tricks_test", "params:tricks.data", "params:tricks.model",
                "params:tricks.trainer", "params:tricks.optimizer", f"params:tricks.runs.{run}",
                "params:seed", f"tricks_{run}_checkpoints"],
        outputs=[f"tricks_{run}_model", f"tricks_{run}_history"],
        name=f"train_{run}_node",
    )


def create_pipeline(**kwargs) -> Pipeline:
    """image_ingest's splits -> subsets -> runs -> metrics, curves, report."""
    evaluate_inputs = {"test": "tricks_test", "data": "params:tricks.data",
                       "runs": "params:tricks.runs"}
    for run in RUNS:
        evaluate_inputs[f"{run}__model"] = f"tricks_{run}_model"
        evaluate_inputs[f"{run}__history"] = f"tricks_{run}_history"
    return Pipeline([
        Node(select_images, inputs=["images_train", "images_test", "image_ingest_report",
                                    "params:tricks.data", "params:seed"],
             outputs=["tricks_train", "tricks_test"], name="select_tricks_images_node"),
        *[_train_node(run) for run in RUNS],
        Node(evaluate_runs, inputs=evaluate_inputs, outputs=["tricks_metrics", "tricks_history"],
             name="evaluate_tricks_node"),
        Node(plot_curves, inputs="tricks_history", outputs="tricks_curves",
             name="plot_tricks_curves_node"),
        Node(write_report, inputs=["tricks_metrics", "params:tricks", "params:seed", "run_id",
                                   "image_ingest_report"],
             outputs="tricks_report", name="write_tricks_report_node"),
    ], tags=["tricks"])
