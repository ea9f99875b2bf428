"""Softmax retrieval loss, not-to-recommend loss and group NTR (built in the model issue)."""
