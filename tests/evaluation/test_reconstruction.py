"""The reconstruction-margin diagnostic on the shipped model (docs/base-model.md uses it)."""

from __future__ import annotations

import pytest

from tts_adapt.evaluation.reconstruction import load_for_reconstruction, reconstruction_margin


@pytest.fixture(scope="module")
def shipped_setup(prepared_synthetic):
    from tts_adapt.alignment.recognizer import load_recognizer
    from tts_adapt.evaluation.similarity import get_speaker_encoder
    from tts_adapt.models.styletts2.default import default_model_paths

    weights, config = default_model_paths()
    by_voice: dict[str, list] = {}
    for it in prepared_synthetic.items:
        by_voice.setdefault(it.speaker, []).append(it)
    model = load_for_reconstruction(weights, config)
    recognizer = load_recognizer(weights.parent / "recognizer.safetensors")
    return model, by_voice, recognizer, get_speaker_encoder("resemblyzer")


@pytest.mark.slow
@pytest.mark.espeak
def test_the_style_carries_the_voice(shipped_setup):
    """Measured on the 12 unseen voices: the style of another voice's utterance drops the margin from
    0.090 to 0.012. A rebuild that ignored the style (or took it from the wrong place) would score
    the same for both sources."""
    model, by_voice, recognizer, encoder = shipped_setup
    right = reconstruction_margin(model, by_voice, recognizer, encoder, style="other")
    wrong = reconstruction_margin(model, by_voice, recognizer, encoder, style="wrong")
    assert right["voices"] == len(by_voice) == len(right["per_voice"])
    assert right["margin"] == pytest.approx(sum(right["per_voice"].values()) / len(by_voice))
    assert right["margin"] > wrong["margin"] + 0.03
    assert right["sim_own"] > wrong["sim_own"]


def test_too_few_utterances_or_voices_are_clear_errors(shipped_setup):
    model, by_voice, recognizer, encoder = shipped_setup
    one = dict(list(by_voice.items())[:1])
    with pytest.raises(ValueError, match="at least two voices"):
        reconstruction_margin(model, one, recognizer, encoder)
    short = {v: items[:3] for v, items in by_voice.items()}
    with pytest.raises(ValueError, match="4 are needed"):
        reconstruction_margin(model, short, recognizer, encoder)
    with pytest.raises(ValueError, match="style must be one of"):
        reconstruction_margin(model, by_voice, recognizer, encoder, style="random")


def test_a_checkpoint_folder_without_weights_is_refused(tmp_path):
    with pytest.raises(ValueError, match="weights.safetensors"):
        load_for_reconstruction(tmp_path, "unused.yml")
