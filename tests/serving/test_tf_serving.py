"""`ntr index` output: the manifest, and the SavedModel with the index inside reloaded elsewhere."""

import json
import os
import subprocess
import sys

import numpy as np

from ntr.retrieval.export import histories_to_inputs
from ntr.retrieval.exported import ExportedModel
from ntr.serving.index import recall_at_k
from ntr.serving.topk import BruteForce

RELOAD = """
import sys, numpy as np
from ntr.tfenv import tf
from scann.scann_ops.py import scann_ops  # registers the Scann ops the SavedModel needs
inputs = dict(np.load(sys.argv[2], allow_pickle=True))
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(**{name: tf.constant(value) for name, value in inputs.items()})
np.savez(sys.argv[3], item_ids=out["item_ids"].numpy().astype(str), query=out["query_embedding"].numpy())
"""


def test_manifest_ties_the_index_to_its_model(tiny_index, tiny_export):
    with open(os.path.join(tiny_index, "manifest.json")) as handle:
        manifest = json.load(handle)
    model = ExportedModel(tiny_export)
    assert manifest["model"]["fingerprint"] == model.fingerprint
    assert manifest["model"]["vocab_hash"] == model.export["vocab_hash"]
    assert manifest["config"]["kind"] == "brute_force"  # tiny catalogue: the size rule
    assert manifest["recall"]["measured"] == 1.0 and manifest["recall"]["k"] == 20
    assert manifest["num_items"] == len(model.item_ids) and manifest["build_seconds"] >= 0
    assert manifest["tf_serving"]["recall"]["measured"] >= 0.95


def test_saved_model_with_the_index_reloads_in_a_fresh_process(tiny_index, tiny_export, tmp_path):
    model = ExportedModel(tiny_export)
    histories = [
        [{"item_id": model.item_ids[i + j], "timestamp": j, "action": "like"} for j in range(4)]
        for i in range(8)
    ]
    inputs = histories_to_inputs(histories, model.max_len)
    np.savez(tmp_path / "inputs.npz", **inputs)
    saved = os.path.join(tiny_index, "tf_serving")
    subprocess.run(
        [sys.executable, "-c", RELOAD, saved, str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
        check=True,
        capture_output=True,
    )
    out = np.load(tmp_path / "out.npz")
    queries = model.encode(histories)
    np.testing.assert_allclose(out["query"], queries, rtol=1e-5, atol=1e-6)
    assert out["item_ids"].shape == (8, 20)
    found = np.array([[model.item_index[i] for i in row[:10]] for row in out["item_ids"]])
    assert recall_at_k(found, BruteForce(model.embeddings).search(queries, 10)[1]) >= 0.9
