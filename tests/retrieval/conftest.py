"""A tiny model config for the retrieval tests (the tiny world is in tests/conftest.py)."""

from ntr.retrieval.config import RetrievalConfig, for_variant, with_overrides
from tests.conftest import TINY_WINDOW

TINY_MAX_LEN = TINY_WINDOW
TINY_OVERRIDES = [
    f"model.max_len={TINY_MAX_LEN}",
    "model.dim=16",
    "model.num_heads=2",
    "model.ff_dim=32",
    "model.num_blocks=1",
    "model.dropout=0.0",
    "train.batch_size=16",
    "train.epochs=2",
    "train.checkpoint_every=5",
]


def tiny_config(variant: str = "ntr", extra: tuple[str, ...] = ()) -> RetrievalConfig:
    return with_overrides(for_variant(variant, RetrievalConfig()), TINY_OVERRIDES + list(extra))
