"""Reading the official ``config.yml`` and resolving the hyper-parameters of the ``Utils/`` models.

PL-BERT, the ASR text aligner and the JDC pitch extractor are configured outside ``model_params``: from
embedded sections (``plbert_model_params``, ``asr_model_params``, ``jdc_args``) when present, else from
the files the config names (``PLBERT_dir``/config.yml, ``ASR_config``), else the official defaults.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

DEFAULT_PLBERT = {
    "vocab_size": 178,
    "hidden_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 2048,
    "max_position_embeddings": 512,
    "num_hidden_layers": 12,
    "dropout": 0.1,
}
DEFAULT_ASR = {"input_dim": 80, "hidden_dim": 256, "n_token": 178, "token_embedding_dim": 512}
DEFAULT_JDC = {"num_class": 1, "seq_len": 192}

# The published LibriTTS architecture (random weights for benchmarks and tests, or a template).
LIBRITTS_CONFIG = Path(__file__).resolve().parents[2] / "assets" / "libritts_config.yml"
# A few-million-parameter model of the same structure, for tests and CPU smoke runs.
MICRO_CONFIG = Path(__file__).resolve().parents[2] / "assets" / "micro_config.yml"
# The architecture of the shipped base model: small enough to pre-train on a CPU (harmonic decoder),
# and the same with the iSTFTNet decoder its earlier stages were trained with.
BASE_CONFIG = Path(__file__).resolve().parents[2] / "assets" / "base_config.yml"
BASE_ISTFTNET_CONFIG = Path(__file__).resolve().parents[2] / "assets" / "base_istftnet_config.yml"
# Kokoro-82M v1.0 in our config format, and its 28 English voice packs (float16), shipped together.
KOKORO_DIR = Path(__file__).resolve().parents[2] / "assets" / "kokoro"
KOKORO_CONFIG = KOKORO_DIR / "config.yml"
KOKORO_VOICES = KOKORO_DIR / "voices.safetensors"

REQUIRED_MODEL_PARAMS = (
    "hidden_dim",
    "style_dim",
    "n_token",
    "n_layer",
    "dim_in",
    "decoder",
    "diffusion",
    "slm",
)
# What a config that builds only the synthesis modules (``model_params.modules``, e.g. Kokoro) must give.
REQUIRED_SYNTHESIS_PARAMS = ("hidden_dim", "style_dim", "n_token", "n_layer", "decoder")


def named_config(name: str | os.PathLike) -> str | os.PathLike | Path:
    """A bundled config by its short name (``base``, ``base-istftnet``, ``micro``, ``libritts``,
    ``kokoro``); anything else is a path."""
    names = {
        "base": BASE_CONFIG,
        "base-istftnet": BASE_ISTFTNET_CONFIG,
        "micro": MICRO_CONFIG,
        "libritts": LIBRITTS_CONFIG,
        "kokoro": KOKORO_CONFIG,
    }
    return names.get(str(name), name)


def load_config(config: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the config as a dict; ``_config_dir`` records where a file came from."""
    if isinstance(config, dict):
        cfg = copy.deepcopy(config)
        cfg.setdefault("_config_dir", None)
    else:
        path = Path(config)
        if not path.exists():
            raise FileNotFoundError(f"config not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
            cfg = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{path} is not valid YAML: {e}") from e
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        if not isinstance(cfg, dict):
            raise ValueError(
                f"{path}: expected a mapping at the top level (an official StyleTTS 2 config.yml)"
            )
        cfg["_config_dir"] = str(path.resolve().parent)
    if "model_params" not in cfg and is_kokoro_json(cfg):
        cfg = from_kokoro_json(cfg)
    if "model_params" not in cfg:
        if all(k in cfg for k in ("hidden_dim", "style_dim")):
            cfg = {"model_params": cfg, "_config_dir": cfg.pop("_config_dir", None)}
        else:
            raise ValueError("config has no 'model_params' section (expected the official config.yml format)")
    required = REQUIRED_SYNTHESIS_PARAMS if cfg["model_params"].get("modules") else REQUIRED_MODEL_PARAMS
    missing = [k for k in required if k not in cfg["model_params"]]
    if missing:
        raise ValueError(f"config model_params is missing {', '.join(missing)}")
    return cfg


def is_kokoro_json(cfg: dict[str, Any]) -> bool:
    """Kokoro's own ``config.json``: flat sizes, an ``istftnet`` section and a phoneme ``vocab``."""
    return all(k in cfg for k in ("istftnet", "vocab", "plbert", "hidden_dim", "style_dim"))


def from_kokoro_json(kokoro: dict[str, Any]) -> dict[str, Any]:
    """Kokoro's ``config.json`` as our config: the five synthesis modules with an iSTFTNet decoder, its
    vocabulary, two boundary tokens, no output trim, and the shipped voice packs (the v1.0 English
    voices) as its style source. The sizes are read, never assumed."""
    ist = dict(kokoro["istftnet"])
    mp = {k: kokoro[k] for k in ("hidden_dim", "style_dim", "n_token", "n_layer", "max_dur", "dropout")}
    mp.update(
        modules=["bert", "bert_encoder", "predictor", "decoder", "text_encoder"],
        multispeaker=bool(kokoro.get("multispeaker", True)),
        n_mels=kokoro.get("n_mels", 80),
        text_encoder_kernel_size=kokoro.get("text_encoder_kernel_size", 5),
        decoder={"type": "istftnet", **ist, "window_dtype": "float32"},
        residual_scaling="multiply_rsqrt2",
    )
    plbert = {"vocab_size": kokoro["n_token"], **dict(kokoro["plbert"])}
    out = {
        "preprocess_params": {"sr": 24000},
        "model_params": mp,
        "plbert_model_params": plbert,
        "text": {"vocab": dict(kokoro["vocab"]), "end_token": True, "word_tokenize": False},
        "inference": {"trim_samples": 0},
        "_config_dir": kokoro.get("_config_dir"),
    }
    if KOKORO_VOICES.is_file():
        out.update(voice_packs=str(KOKORO_VOICES), default_voice="af_heart")
    return out


def text_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """How text becomes ids for this model: ``vocab`` (symbol -> id; None = the StyleTTS 2 table),
    ``end_token`` (a boundary token after the text too, as Kokoro), ``word_tokenize`` (the LibriTTS
    notebook's NLTK re-spacing of the IPA; Kokoro's runtimes do not)."""
    text = dict(cfg.get("text") or {})
    return {
        "vocab": text.get("vocab"),
        "end_token": bool(text.get("end_token", False)),
        "word_tokenize": bool(text.get("word_tokenize", True)),
    }


def trim_samples(cfg: dict[str, Any]) -> int:
    """Samples cut from the end of every synthesis: the notebook's 50 (a click in the original model),
    none for Kokoro."""
    return int((cfg.get("inference") or {}).get("trim_samples", 50))


def voice_pack_file(cfg: dict[str, Any]) -> Path | None:
    """The voice-pack bundle a voice-pack model's config names (relative to the config's folder)."""
    name = cfg.get("voice_packs")
    if not name:
        return None
    p = Path(name)
    if not p.is_absolute() and cfg.get("_config_dir"):
        p = Path(cfg["_config_dir"]) / p
    return p


def _candidates(name: str, cfg: dict[str, Any]) -> list[Path]:
    """Official paths are relative to the StyleTTS 2 repository root; try the likely anchors."""
    p = Path(name)
    if p.is_absolute():
        return [p]
    out = [Path.cwd() / p]
    base = cfg.get("_config_dir")
    if base:
        b = Path(base)
        out += [b / p, b.parent / p, b.parent.parent / p]
    return out


def resolve_path(name: str | None, cfg: dict[str, Any]) -> Path | None:
    if not name:
        return None
    for c in _candidates(str(name), cfg):
        if c.exists():
            return c
    return None


def _model_params_from_yaml(path: Path, section: str = "model_params") -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if section not in data:
        raise ValueError(f"{path}: no '{section}' section")
    return dict(data[section])


def plbert_params(cfg: dict[str, Any]) -> dict[str, Any]:
    if cfg.get("plbert_model_params"):
        return dict(cfg["plbert_model_params"])
    folder = resolve_path(cfg.get("PLBERT_dir"), cfg)
    if folder is not None and (folder / "config.yml").exists():
        return _model_params_from_yaml(folder / "config.yml")
    log.info("PL-BERT config not found (PLBERT_dir=%r); using the official defaults", cfg.get("PLBERT_dir"))
    return dict(DEFAULT_PLBERT)


def asr_params(cfg: dict[str, Any]) -> dict[str, Any]:
    if cfg.get("asr_model_params"):
        return dict(cfg["asr_model_params"])
    path = resolve_path(cfg.get("ASR_config"), cfg)
    if path is not None and path.is_file():
        return _model_params_from_yaml(path)
    log.info("ASR config not found (ASR_config=%r); using the official defaults", cfg.get("ASR_config"))
    return dict(DEFAULT_ASR)


def jdc_params(cfg: dict[str, Any]) -> dict[str, Any]:
    return dict(cfg.get("jdc_args") or DEFAULT_JDC)


def sample_rate(cfg: dict[str, Any]) -> int:
    return int((cfg.get("preprocess_params") or {}).get("sr", 24000))
