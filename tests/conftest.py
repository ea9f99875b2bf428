"""Shared test set-up: quiet TF, and helpers to write literal fixture files."""

import json
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return str(path)


def event(
    user, item, ts, action="view", watch=None, duration=None, reason=None, is_random=None, propensity=None
):
    """A canonical event dict (with the optional logging columns), short to write in tests."""
    return {
        "user_id": user,
        "item_id": item,
        "timestamp": ts,
        "action": action,
        "watch_ms": watch,
        "duration_ms": duration,
        "reason": reason,
        "is_random": is_random,
        "propensity": propensity,
    }


# Window length of the tiny world's sequences (tests/retrieval/conftest.py TINY_MAX_LEN matches).
TINY_WINDOW = 20


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """WORKDIR/data of the tiny world (seed 3), windows of TINY_WINDOW events."""
    from ntr.pipelines.config import PreprocessConfig  # noqa: PLC0415 (Beam only when used)
    from ntr.pipelines.pipeline import run_preprocess  # noqa: PLC0415
    from ntr.simulation.world import scaled_config, simulate, write_world  # noqa: PLC0415

    root = tmp_path_factory.mktemp("tiny-world")
    raw = os.path.join(root, "raw")
    write_world(simulate(scaled_config("tiny", seed=3)), raw)
    data = os.path.join(root, "data")
    run_preprocess(
        PreprocessConfig(
            events_path=os.path.join(raw, "events.jsonl"),
            items_path=os.path.join(raw, "items.jsonl"),
            output_dir=data,
            max_len=TINY_WINDOW,
        )
    )
    return data


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory):
    """`tiny_model(variant)`: models/<variant> trained 2 epochs on the tiny world and exported
    (trained once per session and variant)."""
    from ntr.retrieval.export import export_model  # noqa: PLC0415 (TF only when used)
    from ntr.retrieval.train import load_trained, train  # noqa: PLC0415
    from tests.retrieval.conftest import tiny_config  # noqa: PLC0415

    root, made = tmp_path_factory.mktemp("tiny-models"), {}

    def make(variant: str) -> str:
        if variant not in made:
            model_dir = os.path.join(root, variant)
            train(tiny_config(variant), tiny_data, model_dir, log=lambda _: None)
            export_model(load_trained(model_dir, tiny_data), tiny_data, model_dir)
            made[variant] = model_dir
        return made[variant]

    return make


def fixed_reason_model(
    directory: str, reason: str, confidence: float, threshold: float, items_path: str
) -> str:
    """Saves a reason model that answers `reason` with probability `confidence` whatever the
    input (zero weights, set biases), its card giving `threshold` as the serving threshold,
    with zero catalogue vectors for the items of `items_path` (the input does not matter)."""
    import math  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415 (torch only for the tests that use it)

    from ntr.pipelines.events import REASONS  # noqa: PLC0415
    from ntr.reasons.catalogue import ItemVectors  # noqa: PLC0415
    from ntr.reasons.data import load_items  # noqa: PLC0415
    from ntr.reasons.label import save_reason_model  # noqa: PLC0415
    from ntr.reasons.model import ReasonModel  # noqa: PLC0415
    from ntr.reasons.train import ReasonTrainConfig  # noqa: PLC0415

    torch.manual_seed(0)
    model = ReasonModel(hidden=8)
    rest = (1 - confidence) / (len(REASONS) - 1)
    with torch.no_grad():
        model.reason.weight.zero_()
        model.reason.bias.copy_(
            torch.tensor([math.log(confidence if r == reason else rest) for r in REASONS])
        )
    card = {"serving": {"threshold": threshold, "target_precision": 0.9}, "metrics": {"reason": {}}}
    items = load_items(items_path)
    vectors = ItemVectors(items, {i: np.zeros(384, np.float32) for i in items})
    save_reason_model(model, ReasonTrainConfig(hidden=8), directory, card, vectors)
    return directory
