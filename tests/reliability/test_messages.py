"""Error messages a user can act on: damaged checkpoints explained without torch's advice to load them
unsafely, command-line flags named instead of Python keywords, refused downloads that leave nothing."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from tts_adapt.cli import main
from tts_adapt.models.styletts2.config import MICRO_CONFIG

from ..data.test_download import MALICIOUS, Handler, server  # noqa: F401  (server: the local HTTP fixture)

UNSAFE_ADVICE = ("weights_only=False", "`weights_only` set to `False`", "weights_only` set to")


class CarriesCode:
    def __reduce__(self):
        return (os.system, ("true",))


def damaged_checkpoints(root, good):
    data = good.read_bytes()
    files = {
        "truncated.pth": data[: len(data) // 2],
        "random.pth": os.urandom(4096),
        "flipped.pth": data[:300] + bytes([data[300] ^ 0xFF]) + data[301:],
        "empty.pth": b"",
    }
    for name, blob in files.items():
        (root / name).write_bytes(blob)
    torch.save({"net": {}, "x": CarriesCode()}, root / "code.pth")
    return sorted(root.glob("*.pth"))


def test_damaged_checkpoints_never_suggest_unsafe_loading(micro_bases, tmp_path, capsys):
    for path in damaged_checkpoints(tmp_path, micro_bases[0]):
        argv = ["synth", "--checkpoint", str(path), "--config", str(MICRO_CONFIG), "--phonemes", "a",
                "--reference", str(path), "--out", str(tmp_path / "x.wav")]  # fmt: skip
        assert main(argv) == 1, path.name
        err = capsys.readouterr().err
        assert str(path) in err and "error:" in err, err
        assert not any(a in err for a in UNSAFE_ADVICE), err
        if path.name == "code.pth":
            assert "posix.system" in err and "could run code" in err
        if path.name in ("truncated.pth", "empty.pth"):
            assert "damaged or truncated" in err


def test_prior_errors_name_command_line_flags(micro_bases):
    from tts_adapt.adapters import apply_lora
    from tts_adapt.curvature import estimate
    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.priors import LaplacePrior

    seed0 = load_official(micro_bases[0], MICRO_CONFIG)
    curv = estimate(seed0, [], None, "l2sp", targets=["decoder"], progress=False)
    seed1 = load_official(micro_bases[1], MICRO_CONFIG)
    with pytest.raises(ValueError) as info:
        curv.check(seed1)
    assert "--curvature-any-weights" in str(info.value) and "check_weights" not in str(info.value)
    curv.check(seed1, check_weights=False)  # what --curvature-any-weights does

    apply_lora(seed0, targets=["decoder", "bert_encoder"])  # bert_encoder: a layer the curvature lacks
    with pytest.raises(ValueError) as info:
        LaplacePrior(seed0, curv, 1.0)
    assert "--prior-missing-layers skip" in str(info.value) and "missing=" not in str(info.value)
    LaplacePrior(seed0, curv, 1.0, missing="skip")  # what --prior-missing-layers skip does


def test_adapt_has_the_flags_the_errors_name():
    from tts_adapt.cli import build_parser

    args = build_parser().parse_args(
        [
            "adapt",
            "--checkpoint",
            "c",
            "--config",
            "y",
            "--data",
            "d",
            "--out",
            "o",
            "--curvature-any-weights",
            "--prior-missing-layers",
            "skip",
        ]  # fmt: skip
    )
    assert args.curvature_any_weights and args.prior_missing_layers == "skip"


def test_refused_download_leaves_nothing_and_claims_no_record(server, tmp_path, caplog):  # noqa: F811
    from tts_adapt.data.archive import UnsafeArchiveError
    from tts_adapt.data.download import MANIFEST, download_archive

    _, base = server
    Handler.files["dotdot.tar.gz"] = MALICIOUS["dotdot.tar.gz"]
    dest = tmp_path / "dest"
    with caplog.at_level(logging.WARNING, logger="tts_adapt"):
        with pytest.raises(UnsafeArchiveError, match="deleted"):
            download_archive(base + "dotdot.tar.gz", dest, progress=False)  # no published sha256
    assert sorted(p.name for p in dest.rglob("*")) == []  # not even .downloads/
    assert not (dest / MANIFEST).exists()
    assert not any("recorded in" in r.getMessage() for r in caplog.records)
