"""A tiny trained and exported model, and its ScaNN index, shared by the serving tests."""

import os

import pytest

from tests.retrieval.conftest import tiny_config


@pytest.fixture(scope="session")
def tiny_export(tiny_data, tmp_path_factory) -> str:
    """models/ntr of a tiny model trained for 2 epochs on the tiny world (exported)."""
    from ntr.retrieval.export import export_model  # noqa: PLC0415
    from ntr.retrieval.train import load_trained, train  # noqa: PLC0415

    model_dir = os.path.join(tmp_path_factory.mktemp("tiny-model"), "ntr")
    train(tiny_config("ntr"), tiny_data, model_dir, log=lambda _: None)
    export_model(load_trained(model_dir, tiny_data), tiny_data, model_dir)
    return model_dir


@pytest.fixture(scope="session")
def tiny_index(tiny_export, tiny_data, tmp_path_factory) -> str:
    """`ntr index` of the tiny export (brute force by the size rule, with tf_serving/)."""
    from ntr.cli.main import main  # noqa: PLC0415

    index_dir = str(tmp_path_factory.mktemp("tiny-index"))
    code = main(
        ["index", "--model-dir", tiny_export, "--data-dir", tiny_data, "--index-dir", index_dir, "--k", "20"]
    )
    assert code == 0
    return index_dir
