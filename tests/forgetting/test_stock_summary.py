"""``forgetting-summary-kokoro`` on a hand-made run folder: rows, seed means, goal, progress, page, Listen."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from tts_adapt.cli import main


def _est(m):
    return {"mean": m, "low": m - 0.01, "high": m + 0.01, "n": 4}


VOICES = ["af_heart", "am_adam"]


def _system(role, target, retention=None, rise=None):
    s = {"role": role, "sets": {"target": {"sim": _est(target), "wer": _est(0.02), "distillmos": _est(3.5)}}}
    if retention is not None:
        s["stock"] = {
            "voices": VOICES,
            "retention": _est(retention),
            "wer_rise": _est(rise),
            "wer": _est(0.01 + rise),
            "nearest_own": {"kept": 2, "of": 2, "not_kept": {}},
            "per_voice": {v: {"retention": _est(retention - 0.01 * i)} for i, v in enumerate(VOICES)},
        }
    return s


RUNS = {  # run: (method, size, λ, seed, target sim, retention, WER rise, loss increase)
    "voice-s0": ("voice", None, None, 0, 0.80, 1.0, 0.0, 0.0),
    "lora-s0": ("lora", None, None, 0, 0.86, 0.94, 0.012, 0.30),
    "lora-s1": ("lora", None, None, 1, 0.88, 0.92, 0.008, -0.10),
    "lora+kfac-l1e3-s0": ("lora+kfac", 1000, 1000.0, 0, 0.86, 0.99, 0.004, 0.02),
    "lora+diag-l1e3-s0": ("lora+diag", 1000, 1000.0, 0, 0.85, 0.97, 0.006, 0.05),
    "lora+l2sp-l1e3-s0": ("lora+l2sp", None, 1000.0, 0, 0.83, 0.98, 0.004, 0.04),
}


@pytest.fixture
def run(tmp_path):
    root = tmp_path / "exp"
    ev, loss, stages = root / "joe" / "eval", root / "joe" / "loss", root / "stages"
    for d in (ev, loss, stages):
        d.mkdir(parents=True)
    systems = {"truth": _system("ground_truth", 0.95), "base-am_michael": _system("base", 0.70)}
    systems["base-am_michael"]["stock"] = {"voices": VOICES, "wer": _est(0.01)}
    spec = {"data": "k", "seed": 0}
    base_loss = {"mean": 2.0, "n": 3, "per_utterance": {}}
    (loss / "base.json").write_text(json.dumps({"run": "base", "spec": spec, "base_loss": base_loss}))
    rows, sr = [], 24000
    tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(sr // 4) / sr).astype(np.float32)
    for name in ["truth", "base-am_michael", *RUNS]:
        wav = ev / "audio" / name / "target" / "c1.wav"
        wav.parent.mkdir(parents=True)
        sf.write(wav, tone, sr)
        role = systems.get(name, {}).get("role", "adapted")
        rows.append({"system": name, "role": role, "set": "target", "id": "c1", "text": "Hi there.",
                     "audio": str(wav.relative_to(ev))})  # fmt: skip
        for v in VOICES:
            clip = ev / "audio" / name / "stock" / v / "00.wav"
            clip.parent.mkdir(parents=True)
            sf.write(clip, tone, sr)
    (ev / "utterances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, (method, size, lam, seed, t, ret, rise, inc) in RUNS.items():
        systems[name] = _system("adapted", t, ret, rise)
        info = {"method": method, "curvature_size": size, "lambda": lam, "seed": seed, "wall_seconds": 60}
        d = {"run": name, "spec": spec, "base_loss": base_loss, "loss": {"mean": 2.0 + inc}, "increase": inc,
             "info": info, "adapted": f"exp/joe/adapt/{name}"}  # fmt: skip
        (loss / f"{name}.json").write_text(json.dumps(d))
    (ev / "aggregates.json").write_text(json.dumps({"systems": systems, "stock": {"voices": VOICES}}))
    corpus = root / "data" / "joe"
    (corpus / "licenses" / "piper-joe").mkdir(parents=True)
    (corpus / "licenses" / "piper-joe" / "MODEL_CARD").write_text("License: CC0\n")
    voice = {"name": "en_US-joe-medium", "speaker": "piper-joe", "description": "joe",
             "license": {"name": "CC0-1.0", "summary": "public domain", "source": "MODEL_CARD"}}  # fmt: skip
    (corpus / "speakers.json").write_text(json.dumps({
        "engine": {"name": "piper"}, "voices": [voice],
        "license_files": {"piper-joe": ["licenses/piper-joe/MODEL_CARD"]}}))  # fmt: skip
    planned = [("01-data-target.target-joe", "data-target", 30), ("05-voice.target-joe.seed-0", "voice", 600)]
    planned += [(f"06-baselines.target-joe.method-lora.seed-{s}", "baselines", 1200) for s in (0, 1, 2)]
    planned += [
        (f"07-prior.target-joe.prior-{p}.lambda-1e3.seed-0", "prior", 1500) for p in ("l2sp", "diag", "kfac")
    ]
    plan = {"values": {"main_lambda_kfac": "1e3", "main_lambda_diag": "1e3", "main_lambda_l2sp": "1e3"},
            "stages": [{"tag": t, "family": f, "bindings": {}} for t, f, _ in planned]}  # fmt: skip
    (stages / "plan.json").write_text(json.dumps(plan))
    for tag, _, sec in planned[:-1]:  # every stage but the KFAC point has run
        (stages / f"{tag}.done.json").write_text(json.dumps({"argv": [], "seconds": sec}))
    return root


def test_kokoro_summary_rows_goal_progress_and_page(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative run folder, as the recipe passes it
    page = tmp_path / "docs" / "results-kokoro.md"
    argv = ["forgetting-summary-kokoro", "--model", "kokoro", "--run", "exp", "--targets", "joe,slt",
            "--main-size", "1000", "--listen-voices", "am_adam",
            "--results", str(page.relative_to(tmp_path))]  # fmt: skip
    assert main(argv) == 0
    s = json.loads((run / "summary" / "summary.json").read_text())
    joe = s["targets"]["joe"]
    assert len(joe["rows"]) == 6
    lora = next(p for p in joe["points"] if p["method"] == "lora")
    assert lora["seeds"] == [0, 1] and lora["target_sim"] == pytest.approx(0.87)
    assert lora["stock_retention"] == pytest.approx(0.93) and lora["stock_wer_rise"] == pytest.approx(0.010)
    # by hand: 0.95 × 0.87 = 0.8265; KFAC 0.86 ≥ it, retention 0.99, rise 0.004 < LoRA's 0.010 and < diag's
    # 0.006 (diag 0.85 reaches the similarity); KFAC (0.99, 0.86) dominates diag (0.97, 0.85) and L2-SP
    # (0.98, 0.83)
    p1 = joe["goal"]["parts"]["kfac_at_lora_target"]
    assert p1["target_needed"] == pytest.approx(0.8265) and p1["diag_best_wer_rise"] == pytest.approx(0.006)
    assert p1["lambdas_meeting"] == [1000.0] and joe["goal"]["met"] is True
    # the loss rise: 0.02 for KFAC, read from the loss file
    assert next(r for r in joe["rows"] if r["run"] == "lora+kfac-l1e3-s0")["loss_increase"] == 0.02
    # progress from the plan and the stamps: 6 of 7 adaptation points (voice, 3 LoRA seeds, 2 of 3 priors)
    prog = s["progress"]
    assert (prog["adapt_planned"], prog["adapt_done"]) == (7, 6)
    assert prog["families"]["prior"] == {"planned": 3, "done": 2, "seconds": 3000, "mean": 1500}
    assert prog["seconds_left_known"] == pytest.approx(1500)  # the KFAC point at its family's mean
    text = page.read_text()
    assert "6 of 7 planned adaptation points have run" in text and "part of the grid" in text
    assert "**Goal met**" in text and "## slt" in text and "Not evaluated yet." in text
    assert "\n2. KFAC's curve dominates diag's" in text and "\n3. KFAC's curve dominates L2-SP's" in text
    assert "| lora | – | – | 0,1 | 0.870 ± 0.014 |" in text  # sd of 0.86 and 0.88
    files = page.parent / "results-kokoro_files"
    assert (files / "joe-pareto.png").stat().st_size > 1000 and (files / "joe-voices.png").is_file()
    ogg = files / "listen" / "joe" / "lora-s0-am_adam.ogg"
    audio, sr = sf.read(ogg)
    assert sr == 24000 and len(audio) == 6000
    assert "[▶](results-kokoro_files/listen/joe/reference.ogg)" in text
    assert "| base | [▶](results-kokoro_files/listen/joe/base-am_michael.ogg) | " in text
    assert "[▶](results-kokoro_files/listen/joe/base-am_michael-am_adam.ogg)" in text
    assert "lora+kfac λ=1000" in text
    assert "**fell** in 1 of 6 runs (most: lora-s1, 2.000 → 1.900)" in text
    # the reference clip's licence, from the target corpus, beside the clips
    notice = (files / "listen" / "NOTICE.md").read_text()
    assert "`joe/`: joe (piper voice `en_US-joe-medium`); licence: CC0-1.0" in notice
    assert (files / "listen" / "joe" / "licenses" / "MODEL_CARD").read_text() == "License: CC0\n"
