"""What the page asks the recipe to run: checked values, and the curvature estimated once."""

from __future__ import annotations

import pytest

from tts_adapt.own_voice.jobs import JobStore, new_secret
from tts_adapt.own_voice.tab import MAX_STEPS, Workshop
from tts_adapt.recipes import load_recipe


@pytest.fixture
def shop(tmp_path):
    return Workshop(store=JobStore(tmp_path / "work"), base=None, checkpoint=tmp_path / "kokoro.safetensors")


def test_voice_only_needs_no_curvature(shop, tmp_path):
    job = shop.store.create(new_secret(), "me")
    values = shop.recipe_variables(job, tmp_path / "clips", "voice", 40, "am_michael")
    assert values["method"] == "voice" and "prior_args" not in values and "compute_curvature" not in values


def test_the_first_prior_job_estimates_the_curvature_and_later_ones_reuse_it(shop, tmp_path):
    job = shop.store.create(new_secret(), "me")
    first = shop.recipe_variables(job, tmp_path / "clips", "lora+prior", 100, "am_michael")
    shared = shop.store.root / "curvature" / "kfac.safetensors"
    assert first["compute_curvature"] == "1" and first["curvature"] == str(shared)
    # the recipe fills the prior's flags from its own variables
    recipe = load_recipe("own_voice")
    values = recipe.resolve(tmp_path / "run", first)
    (adapt,) = [s for s in recipe.expand(values) if s.name == "adapt"]
    argv = recipe.command(adapt, values)
    assert argv[argv.index("--curvature") + 1] == str(shared) and argv[argv.index("--lambda") + 1] == "1000"
    shared.parent.mkdir(parents=True)
    shared.write_bytes(b"estimated")
    assert (
        shop.recipe_variables(job, tmp_path / "clips", "lora+prior", 100, "am_michael")["compute_curvature"]
        == "0"
    )


@pytest.mark.parametrize(
    ("method", "steps", "message"),
    [("full", 10, "unknown method"), ("voice", 0, "1 to"), ("voice", MAX_STEPS + 1, "1 to")],
)
def test_what_the_page_sends_is_checked(shop, tmp_path, method, steps, message):
    job = shop.store.create(new_secret(), "me")
    with pytest.raises(ValueError, match=message):
        shop.recipe_variables(job, tmp_path / "clips", method, steps, "am_michael")
