"""Loading official StyleTTS 2 checkpoints strictly.

The published LibriTTS checkpoint (``epochs_2nd_00020.pth``) is ``{'net': {module: state_dict}, ...}``
with a ``module.`` prefix on every key except in ``mpd``/``msd``/``wd`` (DataParallel). The official
notebook strips prefixes and loads with ``strict=False``, which silently ignores mismatches; we strip
exactly one prefix and refuse to load anything that does not fit, listing every problem.

Kokoro-82M's ``kokoro-v1_0.pth`` is the same thing without the ``net`` wrapper: ``{module: state_dict}``
for its five modules, keys prefixed ``module.``. Its reference code builds the decoder's instance norms
with ``affine=True`` (an ONNX-export workaround), so a file saved from those modules carries
``*.norm.weight``/``*.norm.bias`` entries that the trained model never used; they are accepted when they
are the identity (ones and zeros) and refused otherwise, since our norms have no such parameters.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...utils.io import safe_torch_load
from .model import MODULE_NAMES, StyleTTS2, build_model

log = logging.getLogger(__name__)

PREFIX = "module."
# Buffers that some transformers versions saved and others do not; never a weight.
IGNORABLE = {"bert": {"embeddings.position_ids"}}
MAX_LISTED = 12


class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes do not match the model built from the config."""


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = PREFIX) -> dict[str, torch.Tensor]:
    """Remove one leading ``prefix`` from keys that have it (all or none in official files)."""
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    return shown + (f", … ({len(keys) - MAX_LISTED} more)" if len(keys) > MAX_LISTED else "")


def _identity_norm_keys(module: nn.Module, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Keys of ``state`` that are affine parameters of a non-affine instance norm in ``module``, holding
    the identity (weight all ones, bias all zeros): they change nothing, so dropping them is exact."""
    owners = {n for n, m in module.named_modules() if isinstance(m, nn.InstanceNorm1d) and not m.affine}
    out = []
    for key, value in state.items():
        owner, _, leaf = key.rpartition(".")
        if owner in owners and leaf in ("weight", "bias"):
            identity = torch.ones_like(value) if leaf == "weight" else torch.zeros_like(value)
            if torch.equal(value, identity):
                out.append(key)
    return out


def check_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> list[str]:
    """Human-readable problems (missing, unexpected, mis-shaped keys) of loading ``state`` into ``module``."""
    expected = module.state_dict()
    ignorable = IGNORABLE.get(name, set()) | set(_identity_norm_keys(module, state))
    missing = sorted(k for k in expected if k not in state)
    unexpected = sorted(k for k in state if k not in expected and k not in ignorable)
    shapes = sorted(
        f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"{name}: {len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{name}: {len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    if shapes:
        problems.append(f"{name}: {len(shapes)} mis-shaped key(s): {_listing(shapes)}")
    return problems


def load_module_state(module: nn.Module, state: Mapping[str, torch.Tensor], name: str, source: str) -> None:
    """Strictly load one module's weights or raise :class:`CheckpointMismatchError` naming ``source``."""
    dropped = IGNORABLE.get(name, set()) | set(_identity_norm_keys(module, state))
    state = {k: v for k, v in state.items() if k not in dropped}
    problems = check_state_dict(module, state, name)
    if problems:
        raise CheckpointMismatchError(
            f"{source} does not match the model built from the config:\n  " + "\n  ".join(problems)
        )
    module.load_state_dict(state, strict=True)


def read_net(checkpoint: str | os.PathLike | Mapping[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """The ``net`` mapping of an official checkpoint (path or an already loaded dict).

    A ``.safetensors`` file holds our own layout, ``<module>.<official key>`` (the shipped base model);
    half-precision tensors are widened to float32.
    """
    source = str(checkpoint) if not isinstance(checkpoint, Mapping) else "checkpoint"
    if not isinstance(checkpoint, Mapping) and str(checkpoint).endswith(".safetensors"):
        from ...utils.io import load_tensors

        tensors, _ = load_tensors(checkpoint)
        net: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            module, _, rest = key.partition(".")
            if value.dtype in (torch.float16, torch.bfloat16):
                value = value.float()
            net.setdefault(module, {})[rest] = value
        return net
    data = safe_torch_load(checkpoint) if not isinstance(checkpoint, Mapping) else checkpoint
    if isinstance(data, Mapping) and _is_module_dict(data):
        return {name: strip_prefix(sd) for name, sd in data.items()}  # Kokoro's layout: no 'net' wrapper
    if not isinstance(data, Mapping) or "net" not in data or not isinstance(data["net"], Mapping):
        keys = list(data.keys())[:8] if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointMismatchError(
            f"{source}: expected an official StyleTTS 2 checkpoint with a 'net' dict of module state dicts "
            f"(or Kokoro's dict of module state dicts), found {keys}"
        )
    return {name: strip_prefix(sd) for name, sd in data["net"].items()}


def _is_module_dict(data: Mapping[str, Any]) -> bool:
    """``{module name: state dict}`` with known StyleTTS 2 module names only (``kokoro-v1_0.pth``)."""
    return bool(data) and all(k in MODULE_NAMES and isinstance(v, Mapping) for k, v in data.items())


def load_plbert_weights(model: StyleTTS2, path: str | os.PathLike) -> None:
    """Official ``Utils/PLBERT``: a folder with ``step_*.t7`` (latest used) or one such file.

    Keys are ``module.encoder.<albert key>`` (a masked-LM wrapper); only the ALBERT part is kept.
    """
    p = Path(path)
    if p.is_dir():
        steps = sorted(p.glob("step_*.t7"), key=lambda f: int(f.stem.split("_")[-1]))
        if not steps:
            raise FileNotFoundError(f"no step_*.t7 PL-BERT checkpoint in {p}")
        p = steps[-1]
    data = safe_torch_load(p)
    state = data.get("net", data) if isinstance(data, Mapping) else data
    albert = {}
    for key, value in strip_prefix(state).items():
        if key.startswith("encoder."):
            albert[key[len("encoder.") :]] = value
    load_module_state(model.bert, albert, "bert", str(p))


def load_asr_weights(model: StyleTTS2, path: str | os.PathLike) -> None:
    """Official ``Utils/ASR/epoch_00080.pth``: weights under ``'model'``."""
    data = safe_torch_load(path)
    state = data.get("model", data) if isinstance(data, Mapping) else data
    load_module_state(model.text_aligner, strip_prefix(state), "text_aligner", str(path))


def load_jdc_weights(model: StyleTTS2, path: str | os.PathLike) -> None:
    """Official ``Utils/JDC/bst.t7``: weights under ``'net'``."""
    data = safe_torch_load(path)
    state = data.get("net", data) if isinstance(data, Mapping) else data
    load_module_state(model.pitch_extractor, strip_prefix(state), "pitch_extractor", str(path))


UNPREFIXED = ("mpd", "msd", "wd")


def official_state(model: StyleTTS2, prefixed: bool = True) -> dict[str, Any]:
    """The model in the official second-stage layout (``module.`` on all but mpd/msd/wd when ``prefixed``)."""
    net = {}
    for name in model.module_names:
        add = prefixed and name not in UNPREFIXED
        state = getattr(model, name).state_dict()
        net[name] = {(PREFIX + k if add else k): v.detach().cpu().contiguous() for k, v in state.items()}
    return {"net": net, "optimizer": [], "iters": 0, "val_loss": 0.0, "epoch": 0}


def save_official(model: StyleTTS2, path: str | os.PathLike, prefixed: bool = True) -> Path:
    """Write an official-format ``.pth`` (for the official notebooks and tools; our own artifacts are
    safetensors). Atomic: a temporary file renamed into place."""
    from ...utils.io import atomic_path

    path = Path(path)
    state = official_state(model, prefixed)
    size = sum(t.numel() * t.element_size() for sd in state["net"].values() for t in sd.values())
    with atomic_path(path, suffix=".pth", size_hint=size) as tmp:
        torch.save(state, tmp)
    return path


def load_official(
    checkpoint: str | os.PathLike | Mapping[str, Any],
    config: str | os.PathLike | dict[str, Any],
    plbert: str | os.PathLike | None = None,
    asr: str | os.PathLike | None = None,
    jdc: str | os.PathLike | None = None,
    modules: tuple[str, ...] | None = None,
) -> StyleTTS2:
    """Build from ``config`` and load an official second-stage checkpoint strictly, in eval mode.

    ``plbert``/``asr``/``jdc`` load the official ``Utils/`` weights first; modules present in the
    checkpoint then take precedence, exactly as in the official scripts. Every module of the model must
    receive weights from somewhere, unless ``modules`` names a subset to require (e.g. inference only).
    """
    model = build_model(config)
    if plbert is not None:
        load_plbert_weights(model, plbert)
    if asr is not None:
        load_asr_weights(model, asr)
    if jdc is not None:
        load_jdc_weights(model, jdc)
    net = read_net(checkpoint)
    source = str(checkpoint) if not isinstance(checkpoint, Mapping) else "checkpoint"
    _check_known(net, source, model)
    # modules a checkpoint's own config declares it never trained (the shipped base model has no JDC)
    untrained = set(model.config.get("untrained_modules") or ())
    required = (set(modules or model.module_names) & set(model.module_names)) - untrained
    provided = {"bert": plbert, "text_aligner": asr, "pitch_extractor": jdc}
    absent = sorted(n for n in required if n not in net and provided.get(n) is None)
    if absent:
        raise CheckpointMismatchError(f"{source}: no weights for module(s) {', '.join(absent)}")
    _load_modules(model, net, source)
    log.info("loaded %s (%d modules)", source, len(net))
    return model.eval()


def _check_known(net: Mapping[str, Any], source: str, model: StyleTTS2) -> None:
    unknown = sorted(set(net) - set(MODULE_NAMES))
    if unknown:
        raise CheckpointMismatchError(f"{source}: unknown module(s) in 'net': {', '.join(unknown)}")
    extra = sorted(set(net) - set(model.module_names))
    if extra:
        raise CheckpointMismatchError(
            f"{source} holds module(s) {', '.join(extra)} that the config does not build "
            f"(its model_params.modules: {', '.join(model.module_names)})"
        )


def _load_modules(model: StyleTTS2, net: Mapping[str, Mapping[str, torch.Tensor]], source: str) -> None:
    """Load every module of ``net`` strictly, after checking them all: a mismatch loads nothing."""
    problems = []
    for name in model.module_names:
        if name in net:
            problems += check_state_dict(
                getattr(model, name),
                {k: v for k, v in net[name].items() if k not in IGNORABLE.get(name, set())},
                name,
            )
    if problems:
        raise CheckpointMismatchError(
            f"{source} does not match the model built from the config:\n  " + "\n  ".join(problems)
        )
    for name in model.module_names:
        if name in net:
            load_module_state(getattr(model, name), net[name], name, source)


def _under(key: str, prefix: str) -> bool:
    """``key`` is ``prefix`` or inside it (an empty prefix holds every key)."""
    return not prefix or key == prefix or key.startswith(prefix + ".")


def load_available(model: StyleTTS2, checkpoint: str | os.PathLike, fresh: Sequence[str] = ()) -> list[str]:
    """Load every module the checkpoint holds into ``model`` (each strictly); the others keep their
    weights. For continuing pre-training from a model that lacks some modules (the shipped base model
    has no JDC or WavLM discriminator). Keys under a ``fresh`` prefix (e.g. ``decoder.generator``) are
    neither read nor required: those parameters keep the model's own values, so a new part (another
    generator type) can be fitted under trained weights. Returns the loaded module names."""
    net = {name: dict(state) for name, state in read_net(checkpoint).items()}
    _check_known(net, str(checkpoint), model)
    for prefix in fresh:
        name, _, rest = prefix.partition(".")
        if name not in net:
            continue
        own = getattr(model, name).state_dict()
        net[name] = {k: v for k, v in net[name].items() if not _under(k, rest)}
        net[name].update({k: v for k, v in own.items() if _under(k, rest)})
    _load_modules(model, net, str(checkpoint))
    return sorted(net)
