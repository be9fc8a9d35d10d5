"""``torch_threads``: run a block with a given number of intra-op CPU threads, then restore.

The default models are small and sequential (LSTMs, batch-1 MLPs): on a busy 2-core machine
spinning OpenMP threads made training steps 5-30x slower than one thread. Pipelines expose the
count as a parameter (``cpu_threads`` / ``torch_threads``) and set it to 0 in ``conf/gpu``.
"""

from __future__ import annotations

import torch


class torch_threads:  # noqa: N801 - used like a function: ``with torch_threads(1): ...``
    """Context manager setting ``torch.set_num_threads(n)`` inside the block.

    Args:
        n: Threads to use; ``None`` or ``0`` leaves torch's setting untouched.

    Re-usable: the same instance may be entered several times (not nested).
    """

    def __init__(self, n: int | None) -> None:
        self.n = n or 0
        self._previous = torch.get_num_threads()

    def __enter__(self) -> torch_threads:
        self._previous = torch.get_num_threads()
        if self.n > 0:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.n > 0:
            torch.set_num_threads(self._previous)
