"""Training end to end on the tiny world: checkpoints, kill + resume, MirroredStrategy, two
local multi-worker processes (and a killed worker), export."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ntr.pipelines.events import Label
from ntr.retrieval.data import sequence_dataset
from ntr.retrieval.evaluate import rank_targets
from ntr.retrieval.export import export_model, histories_to_inputs
from ntr.retrieval.items import load_item_table
from ntr.retrieval.metrics import ndcg_at_k
from ntr.retrieval.train import check_model_dir, load_trained, model_metadata, train
from tests.retrieval.conftest import TINY_MAX_LEN, TINY_OVERRIDES, tiny_config

NTR = os.path.join(os.path.dirname(sys.executable), "ntr")


def ntr_train(data_dir, model_dir, *extra):
    sets = [arg for item in TINY_OVERRIDES for arg in ("--set", item)]
    return [NTR, "train", "--data-dir", data_dir, "--model-dir", model_dir, "--no-progress", *sets, *extra]


def test_train_export_and_reload_in_a_fresh_process(tiny_data, tmp_path):
    model_dir = str(tmp_path / "ntr")
    summary = train(tiny_config("ntr"), tiny_data, model_dir, log=lambda _: None)
    assert summary["epochs_run"] == 2 and summary["steps"] > 0 and 0 < summary["valid_ndcg@10"] <= 1
    assert os.listdir(tmp_path / "ntr" / "logs"), "TensorBoard event file missing"
    model = load_trained(model_dir, tiny_data)
    exported = export_model(model, tiny_data, model_dir)
    embeddings = np.load(tmp_path / "ntr" / "item_embeddings.npy")
    item_ids = (tmp_path / "ntr" / "item_ids.txt").read_text().split()
    assert embeddings.shape == (len(item_ids), 16) and exported["num_items"] == len(item_ids)
    np.testing.assert_array_equal(embeddings, model.candidate_embeddings().numpy())
    meta = json.loads((tmp_path / "ntr" / "config.json").read_text())
    assert meta["export"]["fingerprint"] == exported["fingerprint"] and len(exported["fingerprint"]) == 64

    history = [
        {
            "item_id": item_ids[0],
            "action": "view",
            "timestamp": 10,
            "watch_ms": 20_000,
            "duration_ms": 30_000,
        },
        {"item_id": item_ids[1], "action": "dislike", "reason": "creator", "timestamp": 50},
        {"item_id": "never-seen", "action": "view", "timestamp": 70, "watch_ms": 500, "duration_ms": 30_000},
    ]
    inputs = histories_to_inputs([history, history[:1]], TINY_MAX_LEN)
    np.save(tmp_path / "inputs.npy", inputs, allow_pickle=True)
    script = (
        "import sys, numpy as np\n"
        "from ntr.tfenv import tf\n"
        "inputs = np.load(sys.argv[2], allow_pickle=True).item()\n"
        "fn = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "out = fn(**{k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in inputs.items()})\n"
        "np.save(sys.argv[3], out['query_embedding'].numpy())\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "ntr" / "saved_model"),
            str(tmp_path / "inputs.npy"),
            str(tmp_path / "q.npy"),
        ],
        check=True,
    )
    reloaded = np.load(tmp_path / "q.npy")
    # The same history through the in-process model (the pipeline's labels and ids).
    from ntr.retrieval.export import QueryModule
    from ntr.tfenv import tf

    module = QueryModule(model, tiny_data)
    here = module.serve(
        {k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in inputs.items()}
    )
    np.testing.assert_array_equal(reloaded, here["query_embedding"].numpy())
    assert np.abs(reloaded[0] - reloaded[1]).max() > 1e-4  # the dislike and skip changed the query


def test_resume_refuses_a_different_config(tiny_data, tmp_path):
    model_dir = str(tmp_path / "m")
    train(tiny_config("ntr", ("train.epochs=1",)), tiny_data, model_dir, log=lambda _: None)
    with pytest.raises(ValueError, match="--fresh"):
        train(tiny_config("ntr", ("train.epochs=1", "model.dim=8", "model.ff_dim=8")), tiny_data, model_dir)
    # A config written before a field existed (here: train.precision) reads it as its default.
    path = tmp_path / "m" / "config.json"
    written = json.loads(path.read_text())
    del written["config"]["train"]["precision"]
    path.write_text(json.dumps(written))
    check_model_dir(
        model_dir,
        model_metadata(tiny_config("ntr", ("train.epochs=1",)), tiny_data, load_item_table(tiny_data)),
    )
    # Data with other vocabularies (here: a copy whose vocab hash differs) is refused too.
    other = tmp_path / "other-data"
    shutil.copytree(tiny_data, other)
    stats = json.loads((other / "stats.json").read_text())
    stats["vocab_hash"] = "0" * 64
    (other / "stats.json").write_text(json.dumps(stats))
    with pytest.raises(ValueError, match="retrain with `ntr train`"):
        load_trained(model_dir, str(other))


def test_killed_run_resumes_to_the_same_result(tiny_data, tmp_path):
    args = ("--set", "train.epochs=4", "--set", "train.patience=9", "--set", "train.checkpoint_every=3")
    straight = tmp_path / "straight"
    subprocess.run(ntr_train(tiny_data, str(straight), *args), check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        ntr_train(tiny_data, str(killed), *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "checkpoint").exists():
        assert proc.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it was killed"

    resumed = subprocess.run(
        ntr_train(tiny_data, str(killed), *args), check=True, capture_output=True, text=True
    )
    assert "resuming from" in resumed.stdout
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["steps"] == b["steps"] and a["best_epoch"] == b["best_epoch"]
    # No dropout in the tiny config and the same data order: equal up to float noise.
    assert b["valid_ndcg@10"] == pytest.approx(a["valid_ndcg@10"], abs=1e-3)


@pytest.mark.parametrize("softmax", ["full", "sampled"])  # sampled: train.optimizer auto = LazyAdam
def test_mirrored_strategy_over_two_logical_cpus(tiny_data, tmp_path, softmax):
    model_dir = tmp_path / "mirrored"
    command = ntr_train(
        tiny_data, str(model_dir), "--strategy", "mirrored", "--cpu-devices", "2", "--epochs", "1"
    )
    subprocess.run([*command, "--set", f"model.softmax={softmax}"], check=True, capture_output=True)
    summary = json.loads((model_dir / "metrics.json").read_text())
    assert summary["num_replicas"] == 2 and 0 < summary["valid_ndcg@10"] <= 1
    assert summary["optimizer"] == {"full": "adam", "sampled": "lazy_adam"}[softmax]
    assert (model_dir / "saved_model" / "saved_model.pb").exists()


def test_mixed_precision_is_float32_on_a_machine_without_a_gpu(tiny_data, tmp_path):
    logs = []
    config = tiny_config(extra=("train.precision=mixed_float16", "train.epochs=1"))
    summary = train(config, tiny_data, str(tmp_path / "m"), log=logs.append)
    assert summary["precision"] == "float32" and 0 < summary["valid_ndcg@10"] <= 1
    assert any("needs a GPU" in line for line in logs)
    with pytest.raises(ValueError, match="precision 'float8'"):
        tiny_config(extra=("train.precision=float8",))


def test_two_local_workers_match_one_process(tiny_data, tmp_path):
    one = train(tiny_config("ntr"), tiny_data, str(tmp_path / "one"), log=lambda _: None)
    model_dir = tmp_path / "two"
    subprocess.run(
        ntr_train(tiny_data, str(model_dir), "--local-workers", "2"), check=True, capture_output=True
    )
    two = json.loads((model_dir / "metrics.json").read_text())
    assert (two["workers"], two["num_replicas"]) == (2, 2)
    # The same global batches in the same order, each split over two workers whose gradients
    # are summed: the same steps and, up to float summation order, the same model.
    assert two["steps"] == one["steps"] and two["best_epoch"] == one["best_epoch"]
    assert two["valid_ndcg@10"] == pytest.approx(one["valid_ndcg@10"], abs=0.01)
    assert (model_dir / "saved_model" / "saved_model.pb").exists()
    assert not (model_dir / ".workers").exists(), "a worker's scratch folder was left behind"


def test_a_killed_worker_is_recovered_by_running_the_command_again(tiny_data, tmp_path):
    model_dir = tmp_path / "mw"
    command = ntr_train(
        tiny_data, str(model_dir), "--local-workers", "2", "--set", "train.checkpoint_every=2"
    )
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = ""
    while "pids" not in line:  # the launcher's "started 2 workers: pids [...]"
        line = launcher.stdout.readline()
        assert line, "the launcher ended without starting workers"
    pids = json.loads(line.split("pids", 1)[1])
    deadline = time.time() + 120
    while not (model_dir / "checkpoints" / "checkpoint").exists():
        assert launcher.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.05)
    os.kill(pids[1], signal.SIGKILL)  # the non-chief worker
    assert launcher.wait(timeout=60) != 0, "the launcher must fail when a worker dies"
    launcher.stdout.close()
    assert not (model_dir / "metrics.json").exists(), "the run finished before it was killed"

    resumed = subprocess.run(command, check=True, capture_output=True, text=True)
    assert "resuming from" in resumed.stdout
    summary = json.loads((model_dir / "metrics.json").read_text())
    expected = train(tiny_config("ntr"), tiny_data, str(tmp_path / "one"), log=lambda _: None)
    assert summary["steps"] == expected["steps"] and summary["workers"] == 2
    assert summary["valid_ndcg@10"] == pytest.approx(expected["valid_ndcg@10"], abs=0.01)


def test_validation_on_a_window_sample_scores_exactly_those_windows(tiny_data, tmp_path):
    logs = []
    rows = json.loads(open(os.path.join(tiny_data, "stats.json"), encoding="utf-8").read())["splits"]["valid"]
    config = tiny_config(extra=("train.epochs=1", f"train.valid_windows={rows // 3}"))
    summary = train(config, tiny_data, str(tmp_path / "s"), log=logs.append)
    assert summary["valid_share"] == (rows // 3) / rows
    assert any("validating on a fixed" in line and f"of the {rows} valid windows" in line for line in logs)
    # The early-stopping figure is the NDCG of the sampled users' positive targets in a ranking
    # of the whole split: nothing else entered it.
    model = load_trained(str(tmp_path / "s"), tiny_data)
    ranked = rank_targets(model, tiny_data, "valid", k_max=10)
    users = {
        user
        for batch in sequence_dataset(tiny_data, "valid", 16, TINY_MAX_LEN, share=summary["valid_share"])
        for user in batch["user_id"].numpy()
    }
    row_users = np.concatenate(
        [batch["user_id"].numpy() for batch in sequence_dataset(tiny_data, "valid", 128, TINY_MAX_LEN)]
    )
    keep = np.isin(row_users[ranked.row], list(users)) & (ranked.label == int(Label.POSITIVE))
    assert 0 < keep.sum() < (ranked.label == int(Label.POSITIVE)).sum()
    expected = ndcg_at_k(ranked.rank[keep], 10).mean()
    assert summary["valid_ndcg@10"] == pytest.approx(expected, abs=1e-6)
