"""LoRA adapters on StyleTTS 2 through peft (Linear, Conv1d incl. weight-normalised and dilated, LSTM).

Names are imported on first use: ``targets`` and ``merge`` need only torch, so the commands that never
build an adapter (``curvature``, ``synth`` on a base model) do not pay peft's and transformers' import
(about 3 s and 200 MB).
"""

from __future__ import annotations

from ..utils.lazy import lazy_exports

_WHERE = {
    "find_adapter": "adapted",
    "load_adapted": "adapted",
    "load_adapter": "io",
    "read_adapter": "io",
    "save_adapter": "io",
    "DEFAULT_ADAPTER": "lora",
    "active_adapters": "lora",
    "apply_lora": "lora",
    "count_parameters": "lora",
    "delta_factors": "lora",
    "dense_delta": "lora",
    "lora_layers": "lora",
    "LoraLSTM": "lstm",
    "effective_weight": "merge",
    "fold_into": "merge",
    "merge_lora": "merge",
    "PAPER_MODULES": "targets",
    "PROTECTED_MODULES": "targets",
    "aliases": "targets",
    "canonical_names": "targets",
    "default_targets": "targets",
    "layer_kind": "targets",
    "named_layers": "targets",
    "resolve_targets": "targets",
    "unwrap": "targets",
}

__all__ = sorted(_WHERE)


__getattr__ = lazy_exports(__name__, _WHERE)
