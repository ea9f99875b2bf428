"""The tiny `ntr` export and its ScaNN index, shared by the serving tests."""

import pytest


@pytest.fixture(scope="session")
def tiny_export(tiny_model) -> str:
    """models/ntr of a tiny model trained for 2 epochs on the tiny world (exported)."""
    return tiny_model("ntr")


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
