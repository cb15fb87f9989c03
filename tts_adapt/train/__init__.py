"""Fine-tuning objective and the adaptation trainer."""
