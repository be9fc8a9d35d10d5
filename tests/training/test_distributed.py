"""Data-parallel training on 2 CPU processes (gloo), against one process with twice the batch.

The project's own models: the tricks MLP (sample-mean CE, DDP's own gradient sync) and the title
generator (token-mean CE of two directions) with ExactAccumulation, the gradient penalty and FGM,
which take gradient sync over. With the seeded sampler sharding one permutation, the 2 ranks'
step-t batches of b are exactly one process's step-t batch of 2b, so every guarantee must come out
as equal weights (float64). ``ddp_spawn`` must also hand the callbacks' state (EMA shadow, epoch
rows) and the step counters back to the parent process.
"""

from __future__ import annotations

import copy
import os
import random

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from kexue.config import ConfigError
from kexue.models.mlp import MLPConfig
from kexue.models.mlp.model import MLPClassifier
from kexue.models.title_gen.batching import Collate, TitleDataset
from kexue.models.title_gen.config import Seq2SeqConfig
from kexue.models.title_gen.module import TitleGenModule
from kexue.training.config import AdversarialConfig, EMAConfig, OptimizerConfig, TrainerConfig
from kexue.training.ema import EMA
from kexue.training.history import EpochMetrics
from kexue.training.resume import EpochSeededSampler
from kexue.training.trainer import build_trainer

pytestmark = pytest.mark.filterwarnings("ignore")
SEED = 11


def _fit(module, dataset, batch_size: int, devices: int, collate_fn=None, k: int = 1,
         adversarial: AdversarialConfig | None = None, ema: EMAConfig | None = None,
         epochs: int = 2):
    cfg = TrainerConfig(max_epochs=epochs, accelerator="cpu", devices=devices,
                        strategy="ddp_spawn" if devices > 1 else "auto", precision="64-true",
                        accumulate_grad_batches=k, limit_val_batches=0)
    history = EpochMetrics()
    trainer = build_trainer(cfg, adversarial, ema, callbacks=[history])
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn,
                        sampler=EpochSeededSampler(len(dataset), SEED))
    trainer.fit(module.double(), loader)
    return trainer, history


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters(),
                                                          strict=True))


def test_two_ranks_of_b_equal_one_process_of_2b_and_state_comes_back() -> None:
    """Tricks MLP, Adam, EMA: 2 x 8 == 1 x 16 in weights, EMA shadow, steps and epoch rows."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 12), torch.randint(0, 4, (64,))
    ds = TensorDataset(x.double(), y)
    torch.manual_seed(1)
    base = MLPClassifier(MLPConfig(in_dim=12, hidden=[16], n_classes=4, dropout=0.0),
                         OptimizerConfig(name="adam", lr=1e-2))
    one, two = copy.deepcopy(base), copy.deepcopy(base)
    t1, h1 = _fit(one, ds, 16, 1, ema=EMAConfig(decay=0.9))
    t2, h2 = _fit(two, ds, 8, 2, ema=EMAConfig(decay=0.9))
    assert t2.world_size == 2 and t1.global_step == t2.global_step == 8
    assert t2.current_epoch == 2 and len(h2.rows) == len(h1.rows) == 2
    assert _max_diff(one, two) < 1e-12 and _max_diff(base, two) > 1e-3   # it trained
    s1, s2 = EMA.find(t1).shadow, EMA.find(t2).shadow
    assert s2 and all(torch.allclose(s1[n], s2[n], atol=1e-12, rtol=0) for n in s1)
    assert h2.rows[-1]["train_loss"] == pytest.approx(h1.rows[-1]["train_loss"], rel=0.05)


def _title_data(n: int = 16) -> TitleDataset:
    rng = random.Random(3)
    src = [[rng.randrange(4, 30) for _ in range(rng.randint(3, 9))] for _ in range(n)]
    tit = [[rng.randrange(4, 30) for _ in range(rng.randint(1, 6))] for _ in range(n)]
    return TitleDataset(src, tit)


@pytest.mark.parametrize("adversarial", [
    AdversarialConfig(method="none"),
    AdversarialConfig(method="gp", epsilon=1.0, embedding="model.embedding"),
    AdversarialConfig(method="fgm", epsilon=0.5, mode="sum", embedding="model.embedding"),
], ids=["exact-accumulation", "gradient-penalty", "fgm"])
def test_title_model_under_ddp_keeps_exact_accumulation_gp_and_fgm(
        adversarial: AdversarialConfig) -> None:
    """Token-mean title model, accumulate 2: 2 ranks x 2 == 1 process x 4 (ExactAccumulation's
    global normaliser; GP divided by W; FGM's direction averaged over the ranks; both callbacks'
    own all-reduce of the full gradient)."""
    torch.manual_seed(5)
    cfg = Seq2SeqConfig(vocab_size=32, emb_dim=8, enc_hidden=8, dec_hidden=8, heads=2,
                        head_dim=4, smln_hidden=4, out_dim=8, dropout=0.0)
    base = TitleGenModule(cfg, OptimizerConfig(name="sgd", lr=0.5))
    one, two = copy.deepcopy(base), copy.deepcopy(base)
    ds = _title_data()
    t1, _ = _fit(one, ds, 4, 1, Collate(), k=2, adversarial=adversarial, epochs=1)
    t2, _ = _fit(two, ds, 2, 2, Collate(), k=2, adversarial=adversarial, epochs=1)
    assert t1.global_step == t2.global_step == 2
    assert _max_diff(base, one) > 1e-3
    assert _max_diff(one, two) < 1e-10


LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "LOCAL_RANK", "GROUP_RANK",
                 "TORCHELASTIC_RUN_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_NTASKS_PER_NODE",
                 "SLURM_TASKS_PER_NODE", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_TASKS_PER_NODE",
                 "SLURM_JOB_NAME", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_NNODES",
                 "SLURM_NODELIST", "SLURM_JOB_ID", "SLURM_TASK_PID")


def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)


def test_external_launcher_env_sets_devices_and_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchrun: 8 ranks, 4 per node -> devices 4 x 2 nodes (Lightning requires the product to be
    WORLD_SIZE), from auto, -1, the default 1, 4 and four listed ids alike; a count, an id list
    or num_nodes that contradicts the launcher is refused naming the key; a one-process torchrun
    maps auto to 1; no launcher -> unchanged, and rank 0 only is allowed to write."""
    from kexue.launch import is_rank_zero, launched_rank, resolve_devices

    _no_launcher(monkeypatch)
    assert resolve_devices("auto", 1) == ("auto", 1) and is_rank_zero()
    assert resolve_devices([0, 1], 1) == ([0, 1], 1)
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert launched_rank() == (5, 8) and not is_rank_zero()
    for devices in ("auto", -1, 1, "1", 4, "4"):
        assert resolve_devices(devices, 1) == (4, 2), devices
    assert resolve_devices(4, 2) == (4, 2)
    assert resolve_devices([0, 1, 2, 3], 1) == ([0, 1, 2, 3], 2)
    assert resolve_devices("0,1,2,3", 1) == ("0,1,2,3", 2)
    for bad in (2, [0], "0,1", "--1"):
        with pytest.raises(ConfigError, match=r"'trainer\.devices': .*4 process\(es\) per node"):
            resolve_devices(bad, 1)
    with pytest.raises(ConfigError, match=r"'trainer\.num_nodes': 3.* = 2 node"):
        resolve_devices("auto", 3)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    with pytest.raises(ConfigError, match="per node"):   # never silently one process per rank
        resolve_devices(1, 1)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert resolve_devices("auto", 1) == (1, 1)           # torchrun --nproc_per_node 1


SRUN_2x4 = {"SLURM_PROCID": "6", "SLURM_LOCALID": "2", "SLURM_NODEID": "1", "SLURM_NTASKS": "8",
            "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "4", "SLURM_STEP_NUM_TASKS": "8",
            "SLURM_STEP_TASKS_PER_NODE": "4(x2)", "SLURM_JOB_NAME": "train",
            "SLURM_NODELIST": "node[1-2]", "SLURM_JOB_ID": "77"}
BATCH_SCRIPT = {k: v for k, v in SRUN_2x4.items() if not k.startswith("SLURM_STEP_")}
BATCH_SCRIPT.update(SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODEID="0", SLURM_NNODES="1",
                    SLURM_NTASKS="4")


def test_srun_is_a_launcher_only_for_a_multi_task_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """srun --ntasks-per-node 4 -N2: 4 devices x 2 nodes. A batch script that runs kedro itself
    has the allocation's SLURM_NTASKS but no step variables, and a single-task step is one
    process: no launcher, devices unchanged (resolving 1 to 4 would wait for ranks that never
    start). Refused, naming the fix: no --ntasks-per-node (Lightning needs it), a step whose tasks
    per node differ from the job's, uneven tasks per node, several tasks in a job named
    'interactive' (Lightning ignores SLURM there: every task would be rank 0), and an
    unreadable variable."""
    from kexue.launch import is_rank_zero, launched_rank, resolve_devices

    _no_launcher(monkeypatch)
    for var, value in BATCH_SCRIPT.items():
        monkeypatch.setenv(var, value)
    assert launched_rank() == (0, 1) and resolve_devices(1, 1) == (1, 1)       # batch script
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    assert launched_rank() == (0, 1) and resolve_devices(4, 1) == (4, 1)       # srun -n1
    for var, value in SRUN_2x4.items():
        monkeypatch.setenv(var, value)
    assert launched_rank() == (6, 8) and not is_rank_zero()
    assert resolve_devices(1, 1) == (4, 2) and resolve_devices("auto", 1) == (4, 2)
    bad = {"SLURM_NTASKS_PER_NODE": (None, "ntasks-per-node N"),
           "SLURM_STEP_TASKS_PER_NODE": ("2(x4)", "same --ntasks-per-node"),
           "SLURM_STEP_NUM_TASKS": ("eight", "not an integer")}
    for var, (value, fix) in bad.items():
        with monkeypatch.context() as m:
            if value is None:
                m.delenv(var)
            else:
                m.setenv(var, value)
            is_rank_zero()                          # never raises (settings.py imports it)
            with pytest.raises(ConfigError, match=fix):
                resolve_devices(1, 1)
    with monkeypatch.context() as m:
        # the shell of `srun --ntasks-per-node 4 --pty bash` (task 0 of 4, job 'bash'): one
        # process, kedro must start; `srun -n8 kedro run` in that job is refused
        m.setenv("SLURM_JOB_NAME", "bash")
        m.setenv("SLURM_PROCID", "0")
        m.setenv("SLURM_TASK_PID", str(os.getpid() + 1))
        assert launched_rank() == (0, 1) and is_rank_zero() and resolve_devices(1, 1) == (1, 1)
        m.setenv("SLURM_TASK_PID", str(os.getpid()))
        assert is_rank_zero()
        with pytest.raises(ConfigError, match="job-name"):
            resolve_devices(1, 1)
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "3,2")
    monkeypatch.delenv("SLURM_STEP_TASKS_PER_NODE")
    with pytest.raises(ConfigError, match="uneven"):
        resolve_devices(1, 1)


def test_lightning_agrees_with_the_launcher_rule_inside_slurm(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What Lightning builds from our resolution. In a batch script (no srun step) Lightning alone
    would take SLURM as the launcher (SLURM_NTASKS=4) and give ddp_spawn workers SLURM's rank 0;
    build_trainer gives it the plain LightningEnvironment, so one process trains on one device
    and ddp_spawn spawns its own ranks. In an srun step, Lightning's SLURMEnvironment is kept and
    its own check (run by Lightning only at fit) accepts our devices x nodes."""
    from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment
    from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
    from lightning_utilities.core.rank_zero import rank_zero_only as utils_rank_zero_only

    from kexue.training.distributed import SpawnDDPStrategy

    for global_rank in (rank_zero_only, utils_rank_zero_only):   # the srun Trainer sets rank 6
        monkeypatch.setattr(global_rank, "rank", getattr(global_rank, "rank", 0))
    _no_launcher(monkeypatch)
    for var, value in BATCH_SCRIPT.items():
        monkeypatch.setenv(var, value)
    assert SLURMEnvironment.detect()                     # the premise: Lightning sees SLURM
    one = build_trainer(TrainerConfig(accelerator="cpu", devices=1))
    assert isinstance(one.strategy, SingleDeviceStrategy)
    spawn = build_trainer(TrainerConfig(accelerator="cpu", devices=2, strategy="ddp_spawn"))
    assert isinstance(spawn.strategy, SpawnDDPStrategy)
    assert isinstance(spawn.strategy.cluster_environment, LightningEnvironment)
    assert spawn.world_size == 2
    with pytest.raises(ConfigError, match="re-executes"):    # devices 2 + auto: a second kedro run
        build_trainer(TrainerConfig(accelerator="cpu", devices=2))
    for var, value in SRUN_2x4.items():
        monkeypatch.setenv(var, value)
    ddp = build_trainer(TrainerConfig(accelerator="cpu", devices=1))
    assert isinstance(ddp.strategy, DDPStrategy)
    env = ddp.strategy.cluster_environment
    assert isinstance(env, SLURMEnvironment)
    assert (ddp.num_devices, ddp.num_nodes, ddp.world_size, ddp.global_rank) == (4, 2, 8, 6)
    env.validate_settings(num_devices=ddp.num_devices, num_nodes=ddp.num_nodes)   # no raise


def test_the_shipped_gpu_trainer_joins_one_process_group_under_torchrun(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's torchrun / srun commands run ``--env gpu``, whose trainers ship ``devices: 1``.
    With 1 kept, Lightning picks a single-device strategy: every rank fits its own model, no
    gradient sync. Each pipeline's own gpu trainer config, under a faked 2-rank torchrun, must
    give a DDP strategy over 2 processes (accelerator set to cpu here: no GPU in CI)."""
    from pathlib import Path

    from kedro.config import OmegaConfigLoader
    from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

    from kexue.config import build_config

    root = Path(__file__).resolve().parents[2]
    params = OmegaConfigLoader(str(root / "conf"), base_env="base",
                               default_run_env="gpu")["parameters"]
    names = [n for n in ("tricks", "entity_linking", "title_generation", "vqvae", "nvae",
                         "text_classification")
             if isinstance(params[n].get("trainer"), dict)]
    assert len(names) == 6
    from lightning.fabric.plugins.environments import TorchElasticEnvironment

    _no_launcher(monkeypatch)
    single = build_trainer(build_config(TrainerConfig, {**params["tricks"]["trainer"],
                                                        "accelerator": "cpu"}))
    assert isinstance(single.strategy, SingleDeviceStrategy)          # no launcher: one process
    for var, value in {"RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0", "WORLD_SIZE": "2",
                       "LOCAL_WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "kexue-test",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(var, value)
    for name in names:
        shipped = params[name]["trainer"]
        assert shipped["devices"] == 1, name                        # the premise: one GPU
        trainer = build_trainer(build_config(TrainerConfig, {**shipped, "accelerator": "cpu"},
                                             where=f"{name}.trainer"))
        assert isinstance(trainer.strategy, DDPStrategy), name
        assert isinstance(trainer.strategy.cluster_environment, TorchElasticEnvironment), name
        assert (trainer.num_devices, trainer.num_nodes, trainer.world_size) == (2, 1, 2), name

def test_plain_ddp_is_refused_unless_an_external_launcher_started_the_ranks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kexue.config import build_config

    _no_launcher(monkeypatch)
    with pytest.raises(Exception, match="ddp_spawn"):
        build_config(TrainerConfig, {"strategy": "ddp"}, where="tricks.trainer")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert build_config(TrainerConfig, {"strategy": "ddp"}, where="tricks.trainer").strategy == "ddp"


def test_non_zero_ranks_load_no_plugin_hook_that_writes() -> None:
    """Every installed plugin hook that writes files (kedro-mlflow's run, kedro-viz's .viz
    statistics) is disabled on ranks > 0 (telemetry is off by consent)."""
    from importlib.metadata import entry_points

    from kexue.settings import NON_ZERO_RANK_PLUGINS

    dists = {e.dist.name for e in entry_points(group="kedro.hooks")}
    assert dists - {"kedro-telemetry"} <= set(NON_ZERO_RANK_PLUGINS)
    assert {"kedro-viz", "kedro_mlflow"} <= dists      # the check is not vacuous here
