"""VQVAE shapes for the configured resolutions, encode/decode round trip, config errors."""

from __future__ import annotations

import pytest
import torch

from kexue.models.vqvae import VQVAE, VQVAEConfig


@pytest.mark.parametrize(("channels", "size", "grid", "code_dim", "norm"), [
    (1, 28, 7, 16, "group"), (1, 8, 2, 16, "none"), (3, 32, 8, 16, "batch"),
    (3, 128, 32, 128, "batch"),
])
def test_shapes(channels: int, size: int, grid: int, code_dim: int, norm: str) -> None:
    torch.manual_seed(0)
    cfg = VQVAEConfig(in_channels=channels, image_size=size, code_dim=code_dim, norm=norm,
                      hidden=16, res_hidden=8)
    model = VQVAE(cfg).eval()
    x = torch.rand(2, channels, size, size) - 0.5
    out = model(x)
    assert cfg.grid_size == grid
    assert out.x_hat.shape == x.shape
    assert out.z.shape == out.quant.z_q.shape == (2, code_dim, grid, grid)
    assert out.quant.indices.shape == (2, grid, grid) and out.quant.counts.shape == (64,)
    idx = model.encode(x)
    assert torch.equal(idx, out.quant.indices)
    torch.testing.assert_close(model.decode_indices(idx), out.x_hat)


def test_encode_does_not_update_the_codebook_in_train_mode() -> None:
    model = VQVAE(VQVAEConfig(image_size=8)).train()
    before = model.quantizer.embedding.clone()
    model.encode(torch.rand(2, 1, 8, 8) - 0.5)
    assert torch.equal(before, model.quantizer.embedding) and model.quantizer.training


@pytest.mark.parametrize(("kw", "key"), [
    ({"image_size": 30}, "image_size"), ({"norm": "layer"}, "norm"), ({"decay": 1.0}, "decay"),
    ({"codebook_size": 1}, "codebook_size"), ({"beta": -1.0}, "beta"),
])
def test_config_errors_name_the_key(kw: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        VQVAEConfig(**kw).validate()
