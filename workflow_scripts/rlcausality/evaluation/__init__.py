"""Generation, metrics, uncertainty, baselines and partial predictions."""
