"""Measuring quality scores against recognition errors: EDC, pAUC, baselines, plots."""
