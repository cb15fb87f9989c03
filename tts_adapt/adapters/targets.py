"""Which layers get LoRA (and curvature), under which names.

Names are *canonical qualified module names* from the model root. A module reachable under several
names (StyleTTS 2's diffusion lists its transformer as both ``diffusion.diffusion.net`` and
``diffusion.unet``) is reported once: names containing an alias segment such as ``unet`` lose to any
other name of the same object, otherwise the first name in ``named_modules`` order wins. LoRA wrappers
from peft are looked through: the layer inside ``x.base_layer`` is called ``x``, so curvature estimated
on the plain model and a prior built on the LoRA model agree on names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from torch import nn

#: StyleTTS 2 modules the paper adapts (every ``nn.Linear`` inside them by default).
PAPER_MODULES: tuple[str, ...] = (
    "bert",
    "bert_encoder",
    "predictor",
    "style_encoder",
    "predictor_encoder",
    "decoder",
    "diffusion",
)
#: StyleTTS 2 modules never adapted: auxiliaries used only for training signals and the discriminators.
PROTECTED_MODULES: tuple[str, ...] = ("text_aligner", "pitch_extractor", "mpd", "msd", "wd")
#: Modules left out of the default targets (``text_encoder`` may still be named explicitly).
NOT_DEFAULT_MODULES: tuple[str, ...] = ("text_encoder",) + PROTECTED_MODULES
STYLETTS2_MODULES: frozenset[str] = frozenset(PAPER_MODULES + NOT_DEFAULT_MODULES)

#: Path segments that mark a secondary name of an aliased module.
ALIAS_SEGMENTS: frozenset[str] = frozenset({"unet"})

#: Layer kinds we know how to adapt, by name (used in ``layer_types`` arguments).
LAYER_KINDS: dict[str, type[nn.Module]] = {"linear": nn.Linear, "conv1d": nn.Conv1d, "lstm": nn.LSTM}


def unwrap(module: nn.Module) -> nn.Module:
    """The plain layer inside a peft LoRA wrapper (or the module itself)."""
    while hasattr(module, "base_layer") and isinstance(module.base_layer, nn.Module):
        module = module.base_layer
    return module


def layer_kind(module: nn.Module) -> str | None:
    """``"linear"``, ``"conv1d"``, ``"lstm"`` for supported layers (wrappers looked through), else None."""
    base = unwrap(module)
    for kind, cls in LAYER_KINDS.items():
        if isinstance(base, cls):
            return kind
    return None


def _is_wrapper_internal(name: str) -> bool:
    parts = name.split(".")
    return "base_layer" in parts or any(p.startswith("lora_") for p in parts)


def canonical_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> canonical name`` for every module (LoRA internals excluded)."""
    seen: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if _is_wrapper_internal(name):
            continue
        seen.setdefault(id(module), []).append(name)
    out: dict[int, str] = {}
    for key, names in seen.items():
        clean = [n for n in names if not ALIAS_SEGMENTS.intersection(n.split("."))]
        out[key] = (clean or names)[0]
    return out


def aliases(model: nn.Module) -> dict[str, list[str]]:
    """Canonical name -> the other names of the same module (only modules that have some)."""
    all_names: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if not _is_wrapper_internal(name):
            all_names.setdefault(id(module), []).append(name)
    canon = canonical_names(model)
    return {canon[k]: [n for n in v if n != canon[k]] for k, v in all_names.items() if len(v) > 1}


def named_layers(model: nn.Module, kinds: Iterable[str] = tuple(LAYER_KINDS)) -> dict[str, nn.Module]:
    """Canonical name -> module for each supported layer of the given kinds, each object once.

    For a LoRA-wrapped layer the wrapper is returned (its name is the wrapper's name).
    """
    kinds = set(kinds)
    canon = canonical_names(model)
    out: dict[str, nn.Module] = {}
    done: set[int] = set()
    for _, module in model.named_modules(remove_duplicate=False):
        if id(module) in done or id(module) not in canon:
            continue
        kind = layer_kind(module)
        if kind is None or kind not in kinds:
            continue
        done.add(id(module))
        out[canon[id(module)]] = module
    return dict(sorted(out.items()))


def is_styletts2(model: nn.Module) -> bool:
    children = {n for n, _ in model.named_children()}
    known = STYLETTS2_MODULES | {"unet", "voices"}  # voices: a voice-pack model's bank (Kokoro), no layers
    return {"decoder", "predictor", "text_encoder"} <= children and children <= known


def _check_kinds(layer_types: Iterable[str]) -> tuple[str, ...]:
    kinds = tuple(layer_types)
    bad = [k for k in kinds if k not in LAYER_KINDS]
    if bad:
        raise ValueError(f"unknown layer type(s) {bad}; expected some of {sorted(LAYER_KINDS)}")
    return kinds


def gradient_free_prefixes(model: nn.Module) -> list[str]:
    """Canonical names of submodules no gradient ever reaches, declared by their parent's
    ``gradient_free_children``: never run (PL-BERT's pooler: the official ``CustomAlbert`` returns the
    last hidden state only) or run under ``no_grad`` (the iSTFTNet decoder's harmonic source). Adapters
    there would never train."""
    canon = canonical_names(model)
    out = []
    for module in model.modules():
        for child in getattr(module, "gradient_free_children", ()):
            sub = getattr(module, child, None)
            if isinstance(sub, nn.Module) and id(sub) in canon:
                out.append(canon[id(sub)])
    return sorted(out)


def default_targets(model: nn.Module, layer_types: Iterable[str] = ("linear",)) -> list[str]:
    """The paper's targets: every layer of ``layer_types`` inside :data:`PAPER_MODULES` of a StyleTTS 2
    model that the model actually runs with gradient; for any other model, every layer of those types."""
    kinds = _check_kinds(layer_types)
    layers = named_layers(model, kinds)
    if not is_styletts2(model):
        return list(layers)
    off_path = gradient_free_prefixes(model)

    def reached(name: str) -> bool:
        return not any(name == p or name.startswith(p + ".") for p in off_path)

    return [n for n in layers if n.split(".")[0] in PAPER_MODULES and reached(n)]


def resolve_targets(
    model: nn.Module,
    targets: str | Sequence[str] | None = None,
    layer_types: Iterable[str] = ("linear",),
) -> list[str]:
    """Expand a target specification to sorted canonical layer names.

    ``targets`` is None (the paper's defaults, see :func:`default_targets`) or a list whose items are
    exact layer names (taken whatever their kind), container names such as ``"predictor"`` (every layer of
    ``layer_types`` beneath), or glob patterns such as ``"decoder.*.fc"`` (layers of ``layer_types``).
    Unknown names and protected StyleTTS 2 modules are errors.
    """
    kinds = _check_kinds(layer_types)
    if targets is None:
        names = default_targets(model, kinds)
        if not names:
            raise ValueError(f"the model has no layers of type {list(kinds)} to target")
        return names
    if isinstance(targets, str):
        targets = [targets]
    every = named_layers(model)
    typed = {n for n, m in every.items() if layer_kind(m) in kinds}
    canon = canonical_names(model)
    alias_map = {a: c for c, al in aliases(model).items() for a in al}
    containers = set(canon.values())
    chosen: set[str] = set()
    for spec in targets:
        spec = str(spec).strip()
        spec = next(
            (c + spec[len(a) :] for a, c in alias_map.items() if spec == a or spec.startswith(a + ".")), spec
        )
        if spec in every:
            chosen.add(spec)
        elif any(ch in spec for ch in "*?["):
            hit = {n for n in typed if fnmatch.fnmatchcase(n, spec)}
            if not hit:
                raise ValueError(f"target pattern {spec!r} matches no {'/'.join(kinds)} layer")
            chosen |= hit
        elif spec in containers or spec == "":
            hit = {n for n in typed if spec == "" or n.startswith(spec + ".")}
            if not hit:
                raise ValueError(f"target module {spec!r} contains no {'/'.join(kinds)} layer")
            chosen |= hit
        else:
            raise ValueError(
                f"target {spec!r} is not a module of the model (expected a layer name, a module name or a "
                f"glob pattern; e.g. {sorted(every)[:3]})"
            )
    if is_styletts2(model):
        bad = sorted(n for n in chosen if n.split(".")[0] in PROTECTED_MODULES)
        if bad:
            raise ValueError(
                f"targets inside {sorted({b.split('.')[0] for b in bad})} are not allowed: the aligner, "
                f"pitch extractor and discriminators are training auxiliaries, not part of the adapted voice "
                f"({bad[:3]})"
            )
    return sorted(chosen)
