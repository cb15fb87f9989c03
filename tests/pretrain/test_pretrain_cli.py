"""``tts-adapt pretrain`` end to end on a tiny corpus: stages, resume, and a result every command loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tts_adapt.cli import main
from tts_adapt.models.styletts2 import load_official
from tts_adapt.utils.io import load_tensors

ARGS = [
    "--config",
    "micro",
    "--aligner-steps",
    "2",
    "--first-steps",
    "3",
    "--second-steps",
    "2",
    "--tma-start",
    "1",
    "--batch-size",
    "2",
    "--max-len",
    "40",
    "--log-every",
    "1",
    "--save-every",
    "1",
    "--sample-every",
    "100",
    "--threads",
    "1",
    "--jobs",
    "1",
]


def run(corpus: Path, out: Path, *extra: str) -> int:
    return main(["pretrain", "--data", str(corpus), "--out", str(out), *ARGS, *extra])


def test_dry_run_prints_the_plan_and_writes_nothing(synthetic_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(synthetic_corpus, out, "--dry-run") == 0
    text = capsys.readouterr().out
    assert "aligner 2 steps, first 3 steps, second 2 steps" in text
    assert not (out / "stages").exists()


def test_bad_stage_name_is_a_clear_error(synthetic_corpus, tmp_path, capsys):
    assert run(synthetic_corpus, tmp_path / "r", "--stages", "aligner,third") == 1
    assert "unknown stage(s) third" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrain_resumes_exactly_and_the_result_loads(synthetic_corpus, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run(synthetic_corpus, straight) == 0
    # the same run interrupted after the first stage's first step: delete what came after it
    assert run(synthetic_corpus, resumed, "--stages", "aligner,first") == 0
    first = resumed / "stages" / "first"
    (first / "done.json").unlink()
    for ckpt in sorted((first / "checkpoints").glob("step-*"))[1:]:
        import shutil

        shutil.rmtree(ckpt)
    with open(first / "losses.jsonl", "a") as f:
        f.write('{"step": 4, "me')  # a kill during an append leaves a torn line
    assert run(synthetic_corpus, resumed) == 0
    a, _ = load_tensors(straight / "model.safetensors")
    b, _ = load_tensors(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert not changed, f"resumed run differs in {changed[:5]}"

    # the interrupted run had logged steps 2 and 3 before they were undone: the log holds each step
    # once, with the values of the straight run
    def losses(run_dir: Path) -> list[dict]:
        lines = (run_dir / "stages" / "first" / "losses.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "utt_per_s"} for x in lines]

    assert [r["step"] for r in losses(resumed)] == [1, 2, 3]
    assert losses(resumed) == losses(straight)
    model = load_official(straight / "model.pth", straight / "config.yml")  # strict: every key
    summary = json.loads((straight / "summary.json").read_text())
    assert set(summary["stages"]) == {"aligner", "first", "second"}
    # the trained weights really moved away from initialisation in each stage's modules
    init = load_official(straight / "model.pth", straight / "config.yml")
    torch.manual_seed(0)
    from tts_adapt.models.styletts2 import build_model

    fresh = build_model(straight / "config.yml")
    for name in ("text_aligner", "decoder", "predictor"):
        w = dict(getattr(model, name).named_parameters())
        f = dict(getattr(fresh, name).named_parameters())
        assert any(not torch.equal(w[k], f[k]) for k in w), f"{name} did not train"
    del init
    # packaged: float16, no JDC/WavLM discriminator, loads strictly with the declared untrained modules
    from tts_adapt.pretrain.package import package_run

    packaged = package_run(straight, tmp_path / "pkg")
    small = load_official(packaged, tmp_path / "pkg" / "config.yml")
    # no adversarial steps in this run: its MPD/MSD are at initialisation, so users adapt without them
    shipped = yaml.safe_load((tmp_path / "pkg" / "config.yml").read_text())
    assert shipped["loss_params"]["lambda_gen"] == 0.0
    assert yaml.safe_load((straight / "config.yml").read_text())["loss_params"]["lambda_gen"] == 1.0
    w = dict(small.decoder.named_parameters())
    for k, v in model.decoder.named_parameters():
        assert torch.allclose(w[k], v, atol=2e-3 * max(1.0, float(v.abs().max())))


def test_changed_settings_refuse_to_resume(synthetic_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(synthetic_corpus, out, "--stages", "aligner") == 0
    ckpts = out / "stages" / "aligner"
    (ckpts / "done.json").unlink()
    assert (
        main(["pretrain", "--data", str(synthetic_corpus), "--out", str(out), *ARGS, "--aligner-lr", "0.1"])
        == 1
    )
    assert "other aligner-stage settings" in capsys.readouterr().err


def test_lr_decay_is_a_half_cosine_of_the_step():
    """lr(step) = final + (lr - final)(1 + cos(pi t))/2, t = (step - start + 1)/(end - start) in (0, 1]."""
    import math

    from tts_adapt.pretrain.config import PretrainConfig

    cfg = PretrainConfig(lr=1e-3, lr_final=1e-4, lr_decay=(10, 20))
    assert cfg.first_lr_factor(0) == cfg.first_lr_factor(9) == 1.0
    assert math.isclose(cfg.first_lr_factor(14), 0.55)  # t = 1/2: halfway between 1 and 0.1
    assert math.isclose(cfg.first_lr_factor(10), 0.1 + 0.45 * (1 + math.cos(math.pi / 10)))
    assert math.isclose(cfg.first_lr_factor(19), 0.1) and math.isclose(cfg.first_lr_factor(500), 0.1)
    assert math.isclose(PretrainConfig(lr=1e-3, lr_decay=(0, 1)).first_lr_factor(0), 0.1)  # default lr/10
    assert PretrainConfig(lr=1e-3).first_lr_factor(10**6) == 1.0  # constant unless asked


def test_bad_lr_decay_is_a_clear_error(synthetic_corpus, tmp_path, capsys):
    for value, message in (("5:5", "0 <= START < END"), ("ten", "START:END")):
        assert run(synthetic_corpus, tmp_path / "r", "--lr-decay", value, "--dry-run") == 1
        assert message in capsys.readouterr().err
    assert run(synthetic_corpus, tmp_path / "r", "--lr-decay", "1:3", "--lr-final", "1", "--dry-run") == 1
    assert "lr_final 1.0 must be in (0, lr" in capsys.readouterr().err


@pytest.mark.slow
def test_a_decay_added_after_the_last_checkpoint_continues_exactly(synthetic_corpus, tmp_path, capsys):
    """A finished constant-lr first stage extended with a decay that starts at its last step equals a
    run that had the decay from the start; a checkpoint past the start of another decay is refused."""
    first = ("--stages", "aligner,first", "--tma-start", "100")
    decay = ("--first-steps", "5", "--lr-decay", "3:5", "--lr-final", "1e-5")
    straight, extended, constant = tmp_path / "straight", tmp_path / "extended", tmp_path / "constant"
    assert run(synthetic_corpus, straight, *first, *decay) == 0
    assert run(synthetic_corpus, extended, *first, "--first-steps", "3") == 0
    assert run(synthetic_corpus, extended, *first, *decay) == 0
    assert run(synthetic_corpus, constant, *first, "--first-steps", "5") == 0

    def weights(run_dir: Path) -> dict[str, torch.Tensor]:
        return load_tensors(
            run_dir / "stages" / "first" / "checkpoints" / "step-0000005" / "weights.safetensors"
        )[0]

    a, b, c = weights(straight), weights(extended), weights(constant)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith("decoder."))  # the decay acted
    # the straight run's checkpoint at step 4 was made with decay 3:5: resuming it with 2:5 is refused
    stage = straight / "stages" / "first"
    (stage / "done.json").unlink()
    import shutil

    shutil.rmtree(stage / "checkpoints" / "step-0000005")
    capsys.readouterr()
    assert run(synthetic_corpus, straight, *first, "--first-steps", "5", "--lr-decay", "2:5") == 1
    assert "other first-stage settings" in capsys.readouterr().err


@pytest.mark.slow
def test_a_later_stage_trained_before_an_extension_is_not_kept(synthetic_corpus, tmp_path, capsys):
    """Extending the first stage after the second finished would otherwise reload the second stage's
    checkpoint, whose decoder is the old one: the run must stop and say which folder to delete."""
    out = tmp_path / "run"
    assert run(synthetic_corpus, out, "--tma-start", "100") == 0
    capsys.readouterr()
    assert run(synthetic_corpus, out, "--tma-start", "100", "--first-steps", "4") == 1
    err = capsys.readouterr().err
    assert "on top of aligner 2 steps, first 3 steps" in err and str(out / "stages" / "second") in err
    import shutil

    shutil.rmtree(out / "stages" / "second")
    assert run(synthetic_corpus, out, "--tma-start", "100", "--first-steps", "4") == 0
    done = json.loads((out / "stages" / "second" / "done.json").read_text())
    assert done["upstream"] == {"aligner": 2, "first": 4}


def test_adversarial_terms_can_train_without_tma(synthetic_corpus, tmp_path):
    """``--adv-start`` before (or without) TMA: the discriminators and the generator term train from
    that step while the recogniser's / frozen aligner's paths stay in use (no s2s/mono terms)."""
    out = tmp_path / "run"
    assert (
        run(synthetic_corpus, out, "--stages", "aligner,first", "--tma-start", "100", "--adv-start", "1") == 0
    )
    lines = (out / "stages" / "first" / "losses.jsonl").read_text().splitlines()
    rows = {r["step"]: r for r in map(json.loads, lines)}  # logged after the update: step k ran as k - 1
    assert "gen" not in rows[1] and "disc" not in rows[1]
    for step in (2, 3):
        assert {"gen", "disc", "mel"} <= set(rows[step]) and "s2s" not in rows[step]
        assert rows[step]["total"] > rows[step]["mel"]  # lambda_mel * mel + lambda_gen * gen, not bare mel


def test_discriminators_count_as_trained_only_when_adversarial_steps_ran():
    from tts_adapt.pretrain.package import discriminators_trained

    assert not discriminators_trained({"adv_start": None, "first_steps": 100})
    assert not discriminators_trained({"adv_start": 100, "first_steps": 100})  # the stage ended first
    assert discriminators_trained({"adv_start": 99, "first_steps": 100})


def test_style_source_is_part_of_the_first_stage_settings(synthetic_corpus, tmp_path, capsys):
    """A first stage checkpointed with the official style segments must not resume as if it had taken
    its styles from other utterances (and the plan says which it uses)."""
    out = tmp_path / "run"
    assert run(synthetic_corpus, out, "--dry-run", "--style-source", "reference") == 0
    assert "style from another utterance of the voice" in capsys.readouterr().out
    assert run(synthetic_corpus, out, "--stages", "aligner,first", "--first-steps", "1") == 0
    (out / "stages" / "first" / "done.json").unlink()
    assert run(synthetic_corpus, out, "--stages", "aligner,first", "--style-source", "reference") == 1
    assert "other first-stage settings" in capsys.readouterr().err
    assert run(synthetic_corpus, out, "--stages", "aligner,first", "--first-steps", "2") == 0


@pytest.mark.slow
def test_adversarial_terms_added_after_the_last_checkpoint_continue_exactly(
    synthetic_corpus, tmp_path, capsys
):
    """A finished reconstruction-only first stage extended with ``--adv-start`` at its last step equals
    a run that asked for the adversarial terms from the start (MPD/MSD are at their seeded
    initialisation until then, in both); a checkpoint past the start of another one is refused."""
    first = ("--stages", "aligner,first", "--tma-start", "100")
    adv = ("--first-steps", "4", "--adv-start", "2")
    straight, extended = tmp_path / "straight", tmp_path / "extended"
    assert run(synthetic_corpus, straight, *first, *adv) == 0
    assert run(synthetic_corpus, extended, *first, "--first-steps", "2") == 0
    assert run(synthetic_corpus, extended, *first, *adv) == 0

    def weights(run_dir: Path) -> dict[str, torch.Tensor]:
        return load_tensors(
            run_dir / "stages" / "first" / "checkpoints" / "step-0000004" / "weights.safetensors"
        )[0]

    a, b = weights(straight), weights(extended)
    assert set(a) == set(b) and any(k.startswith("mpd.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(r) for r in (extended / "stages" / "first" / "losses.jsonl").read_text().splitlines()]
    assert "disc" in rows[-1] and "disc" not in rows[0]  # the discriminators did train after step 2
    stage = straight / "stages" / "first"
    (stage / "done.json").unlink()
    import shutil

    shutil.rmtree(stage / "checkpoints" / "step-0000004")  # step 3 lies past adv_start 2
    capsys.readouterr()
    assert run(synthetic_corpus, straight, *first, "--first-steps", "4", "--adv-start", "1") == 1
    assert "other first-stage settings" in capsys.readouterr().err


def test_the_settings_and_the_objective_know_the_same_style_sources():
    from tts_adapt.objective.first_stage import STYLE_SOURCES as objective_sources
    from tts_adapt.pretrain.config import STYLE_SOURCES

    assert STYLE_SOURCES == objective_sources


@pytest.mark.slow
def test_adversarial_warmup_trains_the_discriminators_alone(synthetic_corpus, tmp_path):
    """``--adv-warmup N``: for N steps from ``--adv-start`` only MPD/MSD learn; the generator's update is
    bit-identical to a reconstruction-only run's (the discriminator step reads detached audio and draws
    nothing), then the generator term joins."""
    first = ("--stages", "aligner,first", "--tma-start", "100", "--first-steps", "3")
    plain, warm = tmp_path / "plain", tmp_path / "warm"
    assert run(synthetic_corpus, plain, *first) == 0
    assert run(synthetic_corpus, warm, *first, "--adv-start", "0", "--adv-warmup", "2") == 0

    def weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
        folder = run_dir / "stages" / "first" / "checkpoints" / f"step-{step:07d}"
        return load_tensors(folder / "weights.safetensors")[0]

    a, b = weights(plain, 2), weights(warm, 2)
    generator = [k for k in a if k.split(".")[0] in ("text_encoder", "style_encoder", "decoder")]
    assert generator and all(torch.equal(a[k], b[k]) for k in generator)
    from tts_adapt.cli.pretrain import resolve_model_config
    from tts_adapt.models.styletts2 import build_model

    torch.manual_seed(0)  # the run's seed: the discriminators' initialisation
    seeded = build_model(resolve_model_config("micro")).state_dict()
    msd = [k for k in b if k.startswith("msd.")]
    assert msd and any(not torch.equal(b[k], seeded[k]) for k in msd)  # the discriminators learnt
    rows = {
        r["step"]: r
        for r in map(json.loads, (warm / "stages" / "first" / "losses.jsonl").read_text().splitlines())
    }
    assert all("disc" in rows[s] and "gen" not in rows[s] for s in (1, 2))
    assert "gen" in rows[3]


def test_adversarial_warmup_needs_adversarial_training(synthetic_corpus, tmp_path, capsys):
    assert run(synthetic_corpus, tmp_path / "r", "--adv-warmup", "5", "--dry-run") == 1
    assert "--adv-start" in capsys.readouterr().err


def test_discriminator_learning_rate_is_its_own(synthetic_corpus, tmp_path, capsys):
    """``--disc-lr``: MPD/MSD train at their own rate. Oracle: Adam's first update of a parameter with a
    non-zero gradient is ``lr * g / |g|`` (bias-corrected moments of one gradient), so after one step
    each moved weight has moved by its group's rate (weight decay adds ``lr * 1e-4 * w``, far below)."""
    out = tmp_path / "r"
    first = ("--stages", "aligner,first", "--tma-start", "100", "--first-steps", "1", "--lr", "2e-4")
    assert (
        run(synthetic_corpus, out, *first, "--adv-start", "0", "--adv-warmup", "1", "--disc-lr", "3e-3") == 0
    )
    from tts_adapt.cli.pretrain import resolve_model_config
    from tts_adapt.models.styletts2 import build_model

    torch.manual_seed(0)  # the run's seed: the discriminators' initialisation
    seeded = build_model(resolve_model_config("micro")).state_dict()
    trained = load_tensors(out / "stages" / "first" / "checkpoints" / "step-0000001" / "weights.safetensors")[
        0
    ]

    def step_sizes(prefix: str) -> torch.Tensor:
        moved = [(trained[k] - seeded[k]).abs().flatten() for k in trained if k.startswith(prefix)]
        d = torch.cat(moved)
        return d[d > 0]

    for prefix in ("mpd.", "msd."):
        assert step_sizes(prefix).median().item() == pytest.approx(3e-3, rel=0.01)
    assert run(synthetic_corpus, tmp_path / "x", "--disc-lr", "1e-3", "--dry-run") == 1
    assert "--adv-start" in capsys.readouterr().err


@pytest.mark.slow
def test_init_continues_from_given_weights(synthetic_corpus, tmp_path, capsys):
    """``--init``: stages start from a given model. With no steps to run, the result is that model,
    module for module; in particular the second stage keeps its trained prosodic style encoder instead
    of the official fresh start's copy of the acoustic one. Another architecture is refused in the
    dry run, naming the file."""
    base = tmp_path / "base"
    assert run(synthetic_corpus, base) == 0
    cont = tmp_path / "cont"
    steps = ("--stages", "first,second", "--first-steps", "0", "--second-steps", "0")
    assert run(synthetic_corpus, cont, *steps, "--init", str(base / "model.pth")) == 0
    assert "starting weights: bert, bert_encoder" in capsys.readouterr().out
    given = load_official(base / "model.pth", base / "config.yml").state_dict()
    result = load_official(cont / "model.pth", cont / "config.yml").state_dict()
    assert set(given) == set(result) and all(torch.equal(given[k], result[k]) for k in given)
    trained = [k for k in given if k.startswith("predictor_encoder.")]
    assert any(not torch.equal(given[k], given["style_encoder." + k.split(".", 1)[1]]) for k in trained)

    argv = ["pretrain", "--data", str(synthetic_corpus), "--out", str(tmp_path / "x"), *ARGS]
    argv[argv.index("micro")] = "base"
    assert main([*argv, "--init", str(base / "model.pth"), "--dry-run"]) == 1
    assert f"{base / 'model.pth'} does not match the model built from the config" in capsys.readouterr().err


@pytest.mark.slow
def test_first_train_only_moves_only_the_named_parameters(synthetic_corpus, tmp_path, capsys):
    """``--first-train-only decoder.generator`` from a HiFi-GAN model into a config with a harmonic
    generator (``--f0 yin-hs``, ``lambda_stft``): the new generator starts seeded (``--init``'s
    generator is not read), every parameter outside the prefix equals the starting weights after
    first-stage steps and the generator's have moved (buffers may move: the style encoders'
    spectral-norm power iterations run in every training-mode forward); the packaged config names the
    run's tracker and its files by name only; a prefix outside the first stage's modules is a usage
    error naming the allowed ones."""
    from tts_adapt.models.styletts2.config import MICRO_CONFIG
    from tts_adapt.pretrain.package import package_run

    base = tmp_path / "base"
    assert run(synthetic_corpus, base, "--stages", "aligner,first", "--first-steps", "1") == 0
    config = yaml.safe_load(Path(MICRO_CONFIG).read_text())
    config["model_params"]["decoder"].update(
        type="harmonic", upsample_rates=[300], upsample_kernel_sizes=[1], n_harmonics=20, envelope_bins=32
    )
    config["loss_params"]["lambda_stft"] = 2.5
    harmonic = tmp_path / "harmonic.yml"
    harmonic.write_text(yaml.safe_dump(config))
    cont = tmp_path / "cont"
    extra = ("--stages", "first", "--first-steps", "2", "--init", str(base / "model.pth"))
    only = ("--first-train-only", "decoder.generator", "--f0", "yin-hs", "--config", str(harmonic))
    assert run(synthetic_corpus, cont, *extra, *only) == 0
    assert "first stage trains only: decoder.generator" in capsys.readouterr().out
    given = dict(load_official(base / "model.pth", base / "config.yml").named_parameters())
    result = dict(load_official(cont / "model.pth", cont / "config.yml").named_parameters())
    outside = [k for k in result if not k.startswith("decoder.generator.")]
    assert outside and all(torch.equal(given[k], result[k]) for k in outside)
    losses = [json.loads(line) for line in (cont / "stages" / "first" / "losses.jsonl").open()]
    assert all("stft" in entry for entry in losses)
    assert load_official(cont / "model.pth", cont / "config.yml").decoder_type == "harmonic"
    # the packaged config names the run's F0 tracker, which adaptation then uses by default
    package_run(cont, tmp_path / "pkg")
    assert yaml.safe_load((tmp_path / "pkg" / "config.yml").read_text())["f0_source"] == "yin-hs"
    _, meta = load_tensors(tmp_path / "pkg" / "model.safetensors")  # no machine paths in a shipped file
    assert meta["pretrain"]["settings"]["init"] == "model.pth"

    assert run(synthetic_corpus, tmp_path / "x", *extra, "--first-train-only", "predictor") == 1
    assert "must start with a first-stage module" in capsys.readouterr().err
