"""Dislike-reason model that labels negatives carrying no reason (built in the reasons issue)."""
