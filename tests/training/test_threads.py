"""torch_threads sets the intra-op thread count inside the block and restores it after."""

import pytest
import torch

from kexue.training.threads import torch_threads


@pytest.fixture(autouse=True)
def _restore():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_sets_and_restores_even_on_error():
    torch.set_num_threads(2)
    ctx = torch_threads(1)
    with pytest.raises(RuntimeError):
        with ctx:
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with ctx:  # re-usable
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("n", [0, None])
def test_zero_or_none_leaves_setting(n):
    torch.set_num_threads(2)
    with torch_threads(n):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2
