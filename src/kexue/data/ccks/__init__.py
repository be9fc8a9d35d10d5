"""CCKS2019 entity linking data: streaming readers, pandera schemas and the embedded default.

* :mod:`kexue.data.ccks.reader` parses ``kb_data`` / ``train.json`` / ``develop.json`` lines into
  column tables, sending every malformed record to a rejects table (counts conserved).
* :mod:`kexue.data.ccks.schemas` holds the pandera ``DataFrameModel`` of every output table.
* :mod:`kexue.data.ccks.generate` yields the embedded default (a synthetic world in the official
  format) used when the official files are absent.
"""
