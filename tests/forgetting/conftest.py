from tests.curvature.conftest import micro_checkpoint, micro_model  # noqa: F401  (shared fixtures)
