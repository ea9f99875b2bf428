"""A tiny preprocessed world shared by the retrieval tests, and a tiny model config."""

import os

import pytest

from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.pipeline import run_preprocess
from ntr.retrieval.config import RetrievalConfig, for_variant, with_overrides
from ntr.simulation.world import scaled_config, simulate, write_world

TINY_MAX_LEN = 20
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


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """WORKDIR/data of the tiny world (seed 3), windows of TINY_MAX_LEN events."""
    root = tmp_path_factory.mktemp("tiny-world")
    raw = os.path.join(root, "raw")
    write_world(simulate(scaled_config("tiny", seed=3)), raw)
    data = os.path.join(root, "data")
    run_preprocess(
        PreprocessConfig(
            events_path=os.path.join(raw, "events.jsonl"),
            items_path=os.path.join(raw, "items.jsonl"),
            output_dir=data,
            max_len=TINY_MAX_LEN,
        )
    )
    return data
