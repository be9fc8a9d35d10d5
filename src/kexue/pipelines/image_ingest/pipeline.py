"""``image_ingest``: read the selected raw source -> split -> preview."""

from kedro.pipeline import Node, Pipeline

from kexue.pipelines.image_ingest.nodes import preview_images, read_images, split_images


def create_pipeline(**kwargs) -> Pipeline:
    """Raw images (one source by ``image_ingest.source``) -> accepted + rejects -> split."""
    return Pipeline([
        Node(read_images, inputs=["image_mnist_csv", "image_digits_csv", "image_mnist_idx",
                                  "image_fashion_mnist_idx", "image_cifar10", "image_folder",
                                  "params:image_ingest"],
             outputs=["image_table", "image_rejects", "image_read_report"],
             name="read_images_node"),
        Node(split_images, inputs=["image_table", "image_read_report", "params:image_ingest",
                                   "params:seed"],
             outputs=["images_train", "images_val", "images_test", "image_ingest_report"],
             name="split_images_node"),
        Node(preview_images, inputs=["images_train", "image_ingest_report", "params:image_ingest"],
             outputs="image_preview", name="preview_images_node"),
    ], tags=["image_ingest"])
