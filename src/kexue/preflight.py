"""Checks run before the first node of a ``kedro run`` (see :class:`kexue.hooks.PreflightHooks`).

A run that cannot do what it was asked must fail at once, naming the key and the fix, not after
an hour of ingestion or training:

* **Parameters.** Every pipeline the run reads parameters of is checked against its top-level
  ``Parameters`` dataclass (``kexue.pipelines.<name>.Parameters``): a misspelt key such as
  ``nvae.batchsize`` would otherwise leave ``batch_size`` at its default without a word.
* **CUDA.** A pipeline whose parameters ask for ``accelerator: gpu`` (or ``device: cuda``)
  on a machine without CUDA (``--env gpu`` on a laptop).
* **Real data.** Under ``embedded_defaults: false`` (``--env gpu``) every raw input the run
  will read must be a real file: a missing CCKS file, image source or corpus folder is an error,
  never a silent switch to the embedded synthetic data; ``corpus_ingest.corpus: default`` is
  refused too. Inputs that a parameter leaves unused (the other image source, word vectors
  that are switched off) are not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kexue.config import ConfigError

# dataset -> (parameters input, path inside it, value that selects the dataset)
SELECTED_BY: dict[str, tuple[str, tuple[str, ...], Any]] = {
    "image_mnist_csv": ("params:image_ingest", ("source",), "mnist"),
    "image_digits_csv": ("params:image_ingest", ("source",), "digits"),
    "image_mnist_idx": ("params:image_ingest", ("source",), "mnist_idx"),
    "image_fashion_mnist_idx": ("params:image_ingest", ("source",), "fashion_mnist_idx"),
    "image_cifar10": ("params:image_ingest", ("source",), "cifar10"),
    "image_folder": ("params:image_ingest", ("source",), "folder"),
    "textcls_tnews_raw": ("params:text_classification", ("data", "source"), "tnews"),
    "textcls_iflytek_raw": ("params:text_classification", ("data", "source"), "iflytek"),
    "textcls_fewclue_iflytek_raw": ("params:text_classification", ("data", "source"),
                                    "fewclue_iflytek"),
    "textcls_chnsenticorp_raw": ("params:text_classification", ("data", "source"),
                                 "chnsenticorp"),
    "entity_linking_word_vectors": ("params:entity_linking", ("model", "word_vectors"), True),
}
CORPUS_PARAMS = "params:corpus_ingest"


def _get(d: Any, path: tuple[str, ...], default: Any = None) -> Any:
    for key in path:
        if not isinstance(d, Mapping) or key not in d:
            return default
        d = d[key]
    return d


def gpu_requests(params: Mapping[str, Any], where: str = "") -> list[str]:
    """Dotted keys in ``params`` that ask for a CUDA device (``accelerator: gpu|cuda``,
    ``device: cuda...``)."""
    found = []
    for key, value in params.items():
        dotted = f"{where}.{key}" if where else str(key)
        if isinstance(value, Mapping):
            found += gpu_requests(value, dotted)
        elif key == "accelerator" and str(value).lower() in ("gpu", "cuda"):
            found.append(dotted)
        elif key == "device" and str(value).lower().startswith(("cuda", "gpu")):
            found.append(dotted)
    return found


def check_cuda(param_inputs: Mapping[str, Any], cuda_available: bool) -> None:
    """Fail when any of the run's parameters asks for a GPU and none is available."""
    wanted = []
    for name, value in param_inputs.items():
        base = name.removeprefix("params:")
        if isinstance(value, Mapping):
            wanted += gpu_requests(value, base)
    if wanted and not cuda_available:
        shown = ", ".join(wanted[:4]) + (" ..." if len(wanted) > 4 else "")
        raise ConfigError(
            f"This run asks for a CUDA GPU ({shown}) but torch finds none "
            "(torch.cuda.is_available() is False). Nothing has run yet. Fix: run on a CUDA "
            "machine with a CUDA build of torch, drop --env gpu, or override the keys, e.g. "
            f"--params \"{wanted[0].rsplit('.', 1)[0]}.accelerator=cpu\".")


def check_real_data(inputs: Iterable[str], param_inputs: Mapping[str, Any],
                    datasets: Mapping[str, Any], embedded_allowed: bool) -> None:
    """Fail when a raw input the run will read is missing and may not fall back (see module)."""
    problems = []
    for name in sorted(inputs):
        ds = datasets.get(name)
        if ds is None or not hasattr(ds, "preflight"):
            continue
        if name in SELECTED_BY:
            pname, path, value = SELECTED_BY[name]
            chosen = _get(param_inputs.get(pname), path)
            if pname in param_inputs and chosen is not None and chosen != value:
                continue                    # not selected by this run's parameters
            if value is True and not chosen:
                continue                    # a switch that is off (or absent)
        problem = ds.preflight()
        if problem:
            problems.append(f"{name}: {problem}")
        elif name in SELECTED_BY and getattr(ds, "optional_missing", lambda: False)():
            problems.append(f"{name}: {SELECTED_BY[name][0]}.{'.'.join(SELECTED_BY[name][1])} is "
                            f"on but {ds.filepath} does not exist. Fix: put the file there or "
                            "switch the parameter off.")
    textcls = (param_inputs.get("params:text_classification") or {}).get("data") or {}
    if ("params:text_classification" in param_inputs and not embedded_allowed
            and textcls.get("source", "embedded") == "embedded"):
        problems.append(
            "text_classification.data.source is 'embedded' (the generated task), which this env "
            "does not allow in place of real data (embedded_defaults: false). Fix: --params "
            "\"text_classification.data.source=tnews\" (or fewclue_iflytek, chnsenticorp) with the "
            "files in data/01_raw/, or set embedded_defaults: true in conf/<env>/globals.yml.")
    if CORPUS_PARAMS in param_inputs:
        cfg = param_inputs[CORPUS_PARAMS] or {}
        corpus = cfg.get("corpus", "default")
        if corpus == "default" and not embedded_allowed:
            problems.append(
                "corpus_ingest.corpus is 'default' (the embedded synthetic corpus), which this env "
                "does not allow in place of real data (embedded_defaults: false, as under --env "
                "gpu). Fix: --params \"corpus_ingest.corpus=csl\" (or lcsts, thucnews) with the "
                "files in data/01_raw/<corpus>/, or set embedded_defaults: true in "
                "conf/<env>/globals.yml.")
        elif corpus != "default":
            ds = datasets.get(f"{corpus}_raw")
            raw = ds.load() if ds is not None and hasattr(ds, "load") else None
            if raw is not None and not raw.exists():
                problems.append(
                    f"corpus_ingest.corpus is {corpus!r} but {raw.where} has no file. Fix: "
                    f"put the {corpus} files there, or choose another corpus_ingest.corpus.")
    if problems:
        raise ConfigError("Raw data check failed before the first node:\n  - "
                          + "\n  - ".join(problems))


def check_parameters(params: Mapping[str, Any], schemas: Mapping[str, type]) -> None:
    """Every ``params:<pipeline>`` mapping against its top-level dataclass, all at once.

    Args:
        params: ``{pipeline: its parameters mapping}`` as the run will pass them.
        schemas: ``{pipeline: dataclass}`` (:func:`kexue.hooks.parameter_schemas`).

    Raises:
        ConfigError: one message listing every unknown, missing or mistyped key, each with
            its fix (:func:`kexue.config.build_config`).
    """
    from kexue.config import build_config

    problems = []
    for name in sorted(set(params) & set(schemas)):
        try:
            build_config(schemas[name], params[name], where=f"params:{name}")
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("Parameters rejected before the first node:\n- " + "\n- ".join(problems))
