"""Bad checkpoints fail loudly, naming the problem, and never execute pickled code."""

from __future__ import annotations

import pickle

import pytest
import torch

from tts_adapt.models.styletts2 import CheckpointMismatchError, load_official


@pytest.fixture(scope="module")
def raw_net(set_a):
    return torch.load(set_a / "tiny_epochs_2nd.pth", weights_only=True)


def _save(tmp_path, data, name="bad.pth"):
    path = tmp_path / name
    torch.save(data, path)
    return path


def test_renamed_key_is_listed(raw_net, set_a, tmp_path):
    net = {k: dict(v) for k, v in raw_net["net"].items()}
    net["decoder"]["encode.conv1.weight_gee"] = net["decoder"].pop("encode.conv1.weight_g")
    with pytest.raises(CheckpointMismatchError) as err:
        load_official(_save(tmp_path, {"net": net}), set_a / "tiny_config.yml")
    msg = str(err.value)
    assert "decoder: 1 missing key(s): encode.conv1.weight_g" in msg
    assert "decoder: 1 unexpected key(s): encode.conv1.weight_gee" in msg


def test_wrong_shape_is_listed(raw_net, set_a, tmp_path):
    net = {k: dict(v) for k, v in raw_net["net"].items()}
    net["predictor"]["duration_proj.linear_layer.weight"] = torch.zeros(7, 3)
    with pytest.raises(CheckpointMismatchError, match=r"predictor: 1 mis-shaped key\(s\): duration_proj"):
        load_official(_save(tmp_path, {"net": net}), set_a / "tiny_config.yml")


def test_checkpoint_for_another_config(raw_net, fixtures_dir, tmp_path):
    """Set A's weights against set B's config (other style_dim): every module with a difference is named."""
    with pytest.raises(CheckpointMismatchError) as err:
        load_official(_save(tmp_path, raw_net), fixtures_dir / "fill_set" / "tiny_config.yml")
    assert "style_encoder" in str(err.value) and "mis-shaped" in str(err.value)


def test_missing_and_unknown_modules(raw_net, set_a, tmp_path):
    net = dict(raw_net["net"])
    del net["wd"]
    with pytest.raises(CheckpointMismatchError, match="no weights for module"):
        load_official(_save(tmp_path, {"net": net}), set_a / "tiny_config.yml")
    net = dict(raw_net["net"], extra_module={})
    with pytest.raises(CheckpointMismatchError, match="unknown module"):
        load_official(_save(tmp_path, {"net": net}), set_a / "tiny_config.yml")


def test_not_a_checkpoint(set_a, tmp_path):
    with pytest.raises(CheckpointMismatchError, match="'net'"):
        load_official(_save(tmp_path, {"model": {}}), set_a / "tiny_config.yml")
    with pytest.raises(FileNotFoundError):
        load_official(tmp_path / "absent.pth", set_a / "tiny_config.yml")


class _Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_with_code_is_refused_and_not_run(set_a, tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"net": {}, "x": _Payload(marker)}, f)
    with pytest.raises(ValueError, match="refusing to load"):
        load_official(path, set_a / "tiny_config.yml")
    assert not marker.exists()


def test_bad_config(tmp_path):
    cfg = tmp_path / "config.yml"
    cfg.write_text("model_params:\n  hidden_dim: 512\n")
    with pytest.raises(ValueError, match="missing"):
        load_official(tmp_path / "x.pth", cfg)
    cfg.write_text(": not yaml : [")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_official(tmp_path / "x.pth", cfg)
