"""ScaNN index and the recommendation service (built in the serving issue)."""
