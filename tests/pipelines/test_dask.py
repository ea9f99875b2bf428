"""Beam on dask.distributed (2 local worker processes) writes what DirectRunner writes."""

import json
import os
import shutil

import pytest

from ntr.pipelines.compare import canonical_outputs, differences
from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.dask_runner import local_cluster
from ntr.pipelines.pipeline import run_preprocess


@pytest.fixture(scope="module")
def dask_flags():
    with local_cluster(2) as flags:
        yield flags


@pytest.fixture(scope="module")
def raw_with_bad_rows(tiny_data, tmp_path_factory):
    """The tiny world's raw/ plus rows each dead-lettered for another reason (so the tagged
    dead-letter outputs carry something)."""
    raw = tmp_path_factory.mktemp("dask-raw")
    for name in ("events.jsonl", "items.jsonl"):
        shutil.copy(os.path.join(os.path.dirname(tiny_data), "raw", name), raw / name)
    bad = ["{not json", json.dumps({"user_id": "u1", "item_id": "i1", "timestamp": 5, "action": "love"})]
    with open(raw / "events.jsonl", "a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in bad)
    return raw


def test_preprocess_on_dask_equals_direct_runner(raw_with_bad_rows, dask_flags, tmp_path):
    def config(out):
        return PreprocessConfig(
            events_path=str(raw_with_bad_rows / "events.jsonl"),
            items_path=str(raw_with_bad_rows / "items.jsonl"),
            output_dir=str(tmp_path / out),
            max_len=20,
        )

    direct = run_preprocess(config("direct"))
    on_dask = run_preprocess(config("dask"), dask_flags)
    assert on_dask["reconciled"] and on_dask["rows_dead_letter"] == direct["rows_dead_letter"] == 2
    assert differences(str(tmp_path / "direct"), str(tmp_path / "dask")) == []
    want = canonical_outputs(str(tmp_path / "direct"))
    assert want["train.tfrecord.gz"] and len(want["dead_letter.jsonl"]) == 2


def test_beam_labeller_on_dask_equals_the_in_memory_one(tiny_data, dask_flags, tmp_path):
    from ntr.reasons.beam_label import run_beam_label  # noqa: PLC0415
    from ntr.reasons.catalogue import ItemVectors  # noqa: PLC0415
    from ntr.reasons.data import load_items  # noqa: PLC0415
    from ntr.reasons.label import label_events  # noqa: PLC0415
    from tests.reasons.test_label import half_reasonless_raw  # noqa: PLC0415

    raw, rows, model = half_reasonless_raw(tiny_data, tmp_path, seed=2)
    vectors = ItemVectors.load(str(tmp_path / "model"), load_items(str(raw / "items.jsonl")))
    memory = label_events(str(raw), model, vectors, str(tmp_path / "memory.jsonl"))
    counts = run_beam_label(str(raw), str(tmp_path / "model"), str(tmp_path / "dask.jsonl"), dask_flags)
    assert counts["events_in"] == counts["events_out"] == len(rows)
    assert {k: counts[k] for k in memory} == memory and memory["filled"] > 0
    memory_lines = (tmp_path / "memory.jsonl").read_text().splitlines()
    assert sorted((tmp_path / "dask.jsonl").read_text().splitlines()) == sorted(memory_lines)


def test_dask_workers_refuses_a_second_runner(raw_with_bad_rows, tmp_path, capsys):
    from ntr.cli.main import main  # noqa: PLC0415

    shutil.copytree(raw_with_bad_rows, tmp_path / "raw")
    argv = ["preprocess", "--workdir", str(tmp_path), "--dask-workers", "2", "--runner=DirectRunner"]
    assert main(argv) == 2
    assert "--dask-workers starts its own cluster" in capsys.readouterr().err
    assert not (tmp_path / "data" / "stats.json").exists()


def test_runner_alias_and_flag_checks():
    from ntr.cli.beam_args import engine_args, unknown_beam_args  # noqa: PLC0415
    from ntr.pipelines.dask_runner import RUNNER  # noqa: PLC0415

    given = ["--runner=DaskRunner", "--dask_client_address=127.0.0.1:8786"]
    with engine_args(0, given) as flags:
        assert flags == [f"--runner={RUNNER}", "--dask_client_address=127.0.0.1:8786"]
    assert unknown_beam_args(given) == []  # Beam's --dask_* options are known to the flag check
    with pytest.raises(ValueError, match="--dask-workers -1"), engine_args(-1, []):
        pass
