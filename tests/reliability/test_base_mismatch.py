"""An adapted model never lands on a base other than the one it was adapted from, silently.

Two micro bases with different random weights stand in for two checkpoints; the adapted folder was
trained (one step) on the seed-0 base. The same weights saved again under another name (a different
file, byte for byte: ``torch.save`` stores the file name inside the archive) must still be accepted.
"""

from __future__ import annotations

import hashlib

import pytest

from tts_adapt.cli import main
from tts_adapt.models.styletts2 import load_official, save_official
from tts_adapt.models.styletts2.config import MICRO_CONFIG
from tts_adapt.train import BaseMismatchError, check_base, load_adapted_model, read_manifest, weights_sha256


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def synth_argv(ckpt, adapted, out, *extra) -> list[str]:
    return ["synth", "--checkpoint", str(ckpt), "--config", str(MICRO_CONFIG), "--adapter", str(adapted),
            "--phonemes", "həlˈoʊ", "--reference", "REF", "--out", str(out),
            "--diffusion-steps", "2", *extra]  # fmt: skip


def test_manifest_records_file_and_weights_hashes(adapted_folder, micro_bases):
    base = read_manifest(adapted_folder)["base"]
    assert base["sha256"] == sha(micro_bases[0])
    assert base["weights_sha256"] == weights_sha256(micro_bases[0])


def test_synth_refuses_another_base_naming_both(adapted_folder, micro_bases, reference_wav, tmp_path, capsys):
    out = tmp_path / "x.wav"
    argv = [a if a != "REF" else str(reference_wav) for a in synth_argv(micro_bases[1], adapted_folder, out)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err
    assert str(micro_bases[1]) in err and str(micro_bases[0].resolve()) in err and str(adapted_folder) in err
    assert "--allow-base-mismatch" in err
    assert not out.exists()


def test_allow_base_mismatch_loads_it_anyway(adapted_folder, micro_bases, reference_wav, tmp_path, capsys):
    out = tmp_path / "x.wav"
    argv = synth_argv(micro_bases[1], adapted_folder, out, "--allow-base-mismatch")
    assert main([a if a != "REF" else str(reference_wav) for a in argv]) == 0
    assert out.stat().st_size > 1000
    assert "(--allow-base-mismatch given)" in capsys.readouterr().err  # said, as a warning


def test_same_weights_under_another_name_are_accepted(adapted_folder, micro_bases, tmp_path):
    copy = save_official(load_official(micro_bases[0], MICRO_CONFIG), tmp_path / "renamed" / "other.pth",
                         prefixed=False)  # fmt: skip
    assert sha(copy) != sha(micro_bases[0])  # a different file...
    assert check_base(adapted_folder, copy) == "weights"  # ...with the same weights
    assert check_base(adapted_folder, micro_bases[0]) == "file"
    load_adapted_model(adapted_folder, checkpoint=copy)  # no error


def test_export_and_evaluate_refuse_another_base(adapted_folder, micro_bases, tmp_path, capsys):
    from tts_adapt.evaluation.systems import make_system

    out = tmp_path / "export" / "merged.pth"
    argv = [
        "export",
        "--adapted",
        str(adapted_folder),
        "--checkpoint",
        str(micro_bases[1]),
        "--out",
        str(out),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert str(micro_bases[1]) in err and "--allow-base-mismatch" in err and not out.exists()
    with pytest.raises(BaseMismatchError, match="was adapted from the base checkpoint"):
        make_system(f"adapted:{adapted_folder}:{micro_bases[1]}")
    system = make_system(f"adapted:{adapted_folder}:{micro_bases[1]}", allow_base_mismatch=True)
    assert system is not None


def test_a_base_overwritten_in_place_is_caught(adapted_folder, micro_bases, tmp_path):
    """The manifest's recorded path now holds other weights: loading without --checkpoint refuses."""
    import json
    import shutil

    folder = tmp_path / "moved"
    shutil.copytree(adapted_folder, folder)
    swapped = tmp_path / "swapped.pth"
    shutil.copy(micro_bases[1], swapped)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["base"]["checkpoint"] = str(swapped)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BaseMismatchError, match="swapped.pth"):
        load_adapted_model(folder)
