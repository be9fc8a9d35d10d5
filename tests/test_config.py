"""kexue.config.build_config: typed parameters that fail fast with the key and the fix."""

from dataclasses import dataclass, field

import pytest

from kexue.config import ConfigError, build_config
from kexue.training.config import AdversarialConfig, OptimizerConfig, TrainerConfig


@dataclass
class Inner:
    width: int = 4
    ratio: float = 0.5


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    sizes: list[int] = field(default_factory=list)
    clip: float | None = None


def test_defaults_and_nested_values():
    cfg = build_config(Outer, {"inner": {"width": 8}, "sizes": [1, 2], "clip": 1})
    assert cfg.inner.width == 8 and cfg.inner.ratio == 0.5
    assert cfg.sizes == [1, 2]
    assert cfg.clip == 1.0 and isinstance(cfg.clip, float)  # int accepted for float, converted
    assert build_config(Outer, None) == Outer()


def test_unknown_key_names_key_valid_keys_and_fix():
    with pytest.raises(ConfigError) as err:
        build_config(TrainerConfig, {"max_epoch": 3}, where="params:tricks.trainer")
    msg = str(err.value)
    assert "params:tricks.trainer.max_epoch" in msg
    assert "max_epochs" in msg  # lists the valid keys
    assert "Fix:" in msg


def test_nested_unknown_key_reports_full_path():
    with pytest.raises(ConfigError, match=r"params:p\.inner\.widht"):
        build_config(Outer, {"inner": {"widht": 3}}, where="params:p")


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"name": 3}, r"params:p\.name.*expected a string"),
        ({"inner": {"width": "8"}}, r"params:p\.inner\.width.*expected an integer"),
        ({"inner": {"width": True}}, r"expected an integer"),
        ({"sizes": 3}, r"params:p\.sizes.*expected a list"),
        ({"inner": 3}, r"expected a mapping"),
    ],
)
def test_wrong_types_fail_fast(params, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_config(Outer, params, where="params:p")


def test_validate_hooks_reject_bad_values():
    with pytest.raises(ConfigError, match="accumulate_grad_batches"):
        build_config(TrainerConfig, {"accumulate_grad_batches": 0}, where="params:t")
    with pytest.raises(ConfigError, match="ddp_spawn"):
        build_config(TrainerConfig, {"strategy": "ddp"}, where="params:t")
    with pytest.raises(ConfigError, match="fgm"):
        build_config(AdversarialConfig, {"method": "pgd"}, where="params:t")


def test_optimizer_config_kwargs_pass_through():
    cfg = build_config(OptimizerConfig, {"name": "adam", "kwargs": {"betas": [0.9, 0.98]}})
    assert cfg.kwargs == {"betas": [0.9, 0.98]}


def test_require_helpers_name_every_offending_field():
    from kexue.config import require_at_least, require_dropout
    from kexue.models.title_gen.config import Seq2SeqConfig

    with pytest.raises(ConfigError, match=r"emb_dim=0, heads=-1 must be >= 1"):
        build_config(Seq2SeqConfig, {"emb_dim": 0, "heads": -1}, where="params:t.model")
    with pytest.raises(ValueError, match=r"dropout=1.0 must lie in \[0, 1\)"):
        require_dropout(Seq2SeqConfig(dropout=1.0))
    require_at_least(Seq2SeqConfig(), 1, "emb_dim", "heads")  # defaults are valid


def test_entity_linking_text_caps_are_null_or_positive() -> None:
    """A negative cap sliced texts from the end (``rows[:-3]``), twice in the gate's scoring."""
    from kexue.models.entity_linking.config import DataConfig

    assert build_config(DataConfig, {"max_dev_texts": None}).max_dev_texts is None
    assert build_config(DataConfig, {"max_dev_texts": 5}).max_dev_texts == 5
    for key in ("max_train_texts", "max_dev_texts", "max_predict_texts"):
        with pytest.raises(ConfigError, match=f"{key}=-3 must be >= 1"):
            build_config(DataConfig, {key: -3}, where="params:entity_linking.data")
