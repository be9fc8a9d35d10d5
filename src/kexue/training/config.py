"""Config dataclasses shared by every training node (built with :func:`kexue.config.build_config`).

YAML shape (under each pipeline's parameters)::

    trainer:       {max_epochs: 3, accumulate_grad_batches: 1, accelerator: auto, ...}
    optimizer:     {name: adam, lr: 1.0e-3, weight_decay: 0.0, scheduler: constant, kwargs: {}}
    adversarial:   {method: none|fgm|gp, epsilon: null (fgm 0.5, gp 1), mode: su|sum, embedding: embedding}
    ema:           {decay: 0.0}          # 0 disables; e.g. 0.999 keeps an EMA copy for evaluation
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainerConfig:
    """Lightning ``Trainer`` settings that a pipeline may set from parameters."""

    max_epochs: int = 1
    max_steps: int = -1                  # optimizer steps; -1 = no limit
    accelerator: str = "auto"            # auto | cpu | gpu | mps
    devices: Any = "auto"                # under torchrun / srun: auto, -1 and 1 = the launcher's
                                         # ranks per node; another count is refused
    num_nodes: int = 1                   # under torchrun / srun: derived (1 or the launcher's)
    strategy: str = "auto"               # auto | ddp_spawn (several devices, one node); never
                                         # plain "ddp" unless torchrun / srun started the ranks
    precision: str = "32-true"           # 32-true | bf16-mixed | 16-mixed
    accumulate_grad_batches: int = 1
    exact_accumulation: bool = True      # k micro-batches == one big batch (accumulation.py)
    accumulation_weighting: str = "module"   # module: the loss's own normalisers | samples
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    limit_train_batches: float | int = 1.0
    limit_val_batches: float | int = 1.0
    val_check_interval: float | int = 1.0
    log_every_n_steps: int = 50
    enable_progress_bar: Any = "auto"    # auto: on a TTY only (quiet under cron / CI / logs)
    deterministic: bool = False
    fast_dev_run: bool = False
    num_workers: int = 0                 # DataLoader worker processes (0: in the main process)
    pin_memory: bool = False             # page-locked batches: asynchronous copies to the GPU
    persistent_workers: bool = False     # keep the workers between epochs (num_workers > 0)
    resumable: bool = False              # epoch checkpoints + exact resume (training/resume.py)

    def loader_kwargs(self) -> dict[str, Any]:
        """The ``DataLoader`` arguments of these settings (workers, pinned memory); conf/gpu
        sets them, the CPU default is the main process and pageable memory. ``pin_memory`` is
        dropped for ``accelerator: cpu`` (nothing to copy to; e.g. a gpu-env run forced to CPU)."""
        return {"num_workers": self.num_workers,
                "pin_memory": self.pin_memory and self.accelerator != "cpu",
                "persistent_workers": self.persistent_workers and self.num_workers > 0}

    def validate(self) -> None:
        if self.num_workers < 0:
            raise ValueError(f"num_workers={self.num_workers}: use 0 (load in the main process) "
                             "or a positive number of worker processes")
        if self.persistent_workers and self.num_workers == 0:
            raise ValueError("persistent_workers: true needs num_workers > 0 (there are no "
                             "workers to keep); set num_workers, or persistent_workers: false")
        if self.accumulate_grad_batches < 1:
            raise ValueError("accumulate_grad_batches must be >= 1 (1 disables accumulation)")
        from kexue.launch import launched_rank

        if self.enable_progress_bar not in (True, False, "auto"):
            raise ValueError(f"enable_progress_bar={self.enable_progress_bar!r}: use true, false "
                             "or auto (a progress bar only when stderr is a terminal)")
        if self.strategy == "ddp" and launched_rank()[1] == 1:
            raise ValueError(
                "strategy 'ddp' re-executes `kedro run` once per rank inside a node; use "
                "'ddp_spawn' for several devices in one node, or start the ranks with torchrun "
                "/ srun (see the README, 'Several GPUs and nodes')"
            )


@dataclass
class OptimizerConfig:
    """Optimizer and LR schedule; ``name`` and ``scheduler`` index the tables in ``optim.py``."""

    name: str = "adam"
    lr: float | None = 1e-3   # null: AdaFactor's relative step min(1/sqrt(t), 1e-2) (Su / paper)
    weight_decay: float = 0.0
    kwargs: dict = field(default_factory=dict)   # extra optimizer arguments (e.g. beta1)
    scheduler: str = "constant"                  # constant | linear_warmup | cosine_warmup
    warmup_steps: int = 0

    def validate(self) -> None:
        if self.lr is None and self.name != "adafactor":
            raise ValueError(f"optimizer.lr is null, which only AdaFactor understands (its "
                             f"relative step), but optimizer.name is {self.name!r}. Fix: give "
                             "a learning rate, or use name: adafactor")
        if self.lr is None and self.scheduler != "constant":
            raise ValueError("optimizer.lr: null (AdaFactor's relative step) has no base rate "
                             f"for scheduler {self.scheduler!r} to scale. Fix: scheduler: "
                             "constant, or give a learning rate")


# Su's epsilon per method when none is set: FGM 0.5 (his IFLYTEK/TNEWS config; the function's
# own default is 1), the gradient penalty 1 (``total = loss + 0.5 * epsilon * gp``, epsilon = 1).
DEFAULT_EPSILON = {"fgm": 0.5, "gp": 1.0}


@dataclass
class AdversarialConfig:
    """Adversarial training on the token embedding (callbacks in ``adversarial.py``)."""

    method: str = "none"          # none | fgm | gp
    epsilon: float | None = None  # None: Su's value for the method (DEFAULT_EPSILON)
    mode: str = "su"              # fgm only: su (adversarial grad only) | sum (clean + adv)
    embedding: str = "embedding"  # dotted submodule path of the nn.Embedding to perturb

    def __post_init__(self) -> None:
        if self.epsilon is None:
            self.epsilon = DEFAULT_EPSILON.get(self.method, 0.5)

    def validate(self) -> None:
        if self.method not in ("none", "fgm", "gp"):
            raise ValueError(f"adversarial.method={self.method!r}; use none, fgm or gp")
        if self.mode not in ("su", "sum"):
            raise ValueError(f"adversarial.mode={self.mode!r}; use su or sum")


@dataclass
class EMAConfig:
    """Exponential moving average of weights, used for evaluation when ``decay > 0``."""

    decay: float = 0.0
