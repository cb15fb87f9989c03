"""Staged, resumable recipes (YAML): ``load_recipe`` and ``run_recipe``."""

from .recipe import RECIPES_DIR, Recipe, RecipeError, Stage, load_recipe
from .runner import StageFailed, run_recipe

__all__ = ["RECIPES_DIR", "Recipe", "RecipeError", "Stage", "StageFailed", "load_recipe", "run_recipe"]
