"""Synthetic world (the default data); later the counterfactual simulator and reports."""
