"""LoRA adapters on StyleTTS 2 through peft (Linear, Conv1d incl. weight-normalised and dilated, LSTM)."""

from .adapted import find_adapter, load_adapted
from .io import load_adapter, read_adapter, save_adapter
from .lora import (
    DEFAULT_ADAPTER,
    active_adapters,
    apply_lora,
    count_parameters,
    delta_factors,
    dense_delta,
    lora_layers,
)
from .lstm import LoraLSTM
from .merge import effective_weight, fold_into, merge_lora
from .targets import (
    PAPER_MODULES,
    PROTECTED_MODULES,
    aliases,
    canonical_names,
    default_targets,
    layer_kind,
    named_layers,
    resolve_targets,
    unwrap,
)

__all__ = [
    "DEFAULT_ADAPTER",
    "LoraLSTM",
    "PAPER_MODULES",
    "PROTECTED_MODULES",
    "active_adapters",
    "aliases",
    "apply_lora",
    "canonical_names",
    "count_parameters",
    "default_targets",
    "delta_factors",
    "dense_delta",
    "effective_weight",
    "find_adapter",
    "fold_into",
    "layer_kind",
    "load_adapted",
    "load_adapter",
    "lora_layers",
    "merge_lora",
    "named_layers",
    "read_adapter",
    "resolve_targets",
    "save_adapter",
    "unwrap",
]
