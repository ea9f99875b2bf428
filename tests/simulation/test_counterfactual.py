"""Counterfactual branching on a hand-built deterministic recommender with known answers."""

import types

import numpy as np
import pytest

from ntr.simulation.counterfactual import (
    SHARES,
    CounterfactualConfig,
    Pair,
    Similarity,
    branch_histories,
    run_counterfactual,
    sample_pairs,
)

# 12 items: creator c{i // 3} (three items each), category "a" for even ids, "b" for odd.
ITEMS = [{"item_id": f"i{i}", "creator_id": f"c{i // 3}", "categories": ["ab"[i % 2]]} for i in range(12)]
# Embeddings: one direction per creator plus a little per item, so X's 2 nearest are its creator's.
EMBEDDINGS = np.array([np.eye(4)[i // 3] + 0.01 * np.eye(12, 4, k=0)[i] for i in range(12)], np.float32)


class RuleRanker:
    """Recommends the items after X (the last watched item) in cyclic order. A dislike of X
    with reason `creator` drops X's creator, `topic` drops X's category, anything else (and a
    skip) drops X only. With `ignore_negatives` it behaves like a positives-only model."""

    def __init__(self, ignore_negatives=False):
        self.ignore_negatives = ignore_negatives
        self.model = types.SimpleNamespace(
            item_ids=[item["item_id"] for item in ITEMS],
            item_index={item["item_id"]: i for i, item in enumerate(ITEMS)},
            items=ITEMS,
            embeddings=EMBEDDINGS,
        )

    def rank(self, histories, k, seeds):
        out = []
        for history in histories:
            last = history[-1]
            x = self.model.item_index[last["item_id"]]
            order = [(x + j) % 12 for j in range(12)]
            negative = last["action"] == "dislike" or (last["action"] == "view" and last["watch_ms"] < 3000)
            if negative and not self.ignore_negatives:
                reason = last.get("reason")
                if reason == "creator":
                    order = [i for i in order if i // 3 != x // 3]
                elif reason == "topic":
                    order = [i for i in order if i % 2 != x % 2]
                else:
                    order = [i for i in order if i != x]
            out.append(order[:k])
        return np.array(out)


def histories_on_multiples_of_three(n=30):
    """Every event on item 0, 3, 6 or 9, so every X has the same neighbourhood pattern."""
    return [
        [{"item_id": f"i{3 * ((u + t) % 4)}", "timestamp": 100 + t, "action": "like"} for t in range(8)]
        for u in range(n)
    ]


def test_branches_are_built_exactly():
    pair = Pair(prefix=[{"item_id": "i1", "timestamp": 5, "action": "like"}], item_row=0, timestamp=9, seed=1)
    a = branch_histories(pair, "i0", 30_000, None)
    assert a[-1] == {
        "item_id": "i0",
        "timestamp": 9,
        "action": "complete",
        "watch_ms": 30_000,
        "duration_ms": 30_000,
    }
    b = branch_histories(pair, "i0", 30_000, "creator")
    assert b[:-1] == a and b[-1] == {
        "item_id": "i0",
        "timestamp": 10,
        "action": "dislike",
        "reason": "creator",
    }
    skip = branch_histories(pair, "i0", 30_000, "skip")
    assert skip[:-1] == a and skip[-1]["action"] == "view" and skip[-1]["watch_ms"] == 1000
    assert skip[-1]["timestamp"] == 10


def test_shares_by_hand():
    similarity = Similarity(ITEMS, EMBEDDINGS, neighbours=2)
    top = np.array([[0, 1, 2, 3], [3, 4, 5, 6]])
    x = np.array([0, 0])
    # Row 1: item 1/4, creator c0 {0,1,2} 3/4, category a {0,2} 2/4, neighbours {1,2} 2/4, other {3} 1/4.
    # Row 2: item 0, creator 0, category a {4,6} 2/4, neighbours 0, other {3,5} 2/4.
    want = np.array([[0.25, 0.75, 0.5, 0.5, 0.25], [0.0, 0.0, 0.5, 0.0, 0.5]])
    np.testing.assert_allclose(similarity.shares(x, top), want)


def test_known_responsiveness_per_reason():
    config = CounterfactualConfig(num_pairs=200, k=4, min_prefix=2, neighbours=2, bootstrap=200, seed=3)
    result = run_counterfactual(RuleRanker(), histories_on_multiples_of_three(), config)
    got = {r: {s: result["reasons"][r][s]["value"] for s in SHARES} for r in config.reasons}
    # Branch A shows [X, X+1, X+2, X+3]: item 1/4, creator 3/4, category 2/4, neighbours 2/4, other 1/4.
    assert got["creator"] == pytest.approx(
        {"item": -1, "creator": -1, "category": 0, "neighbours": -1, "other": 1}
    )
    # topic: [X+1, X+3, X+5, X+7] -> creator 1/4, category 0, neighbours 1/4, other 3/4.
    assert got["topic"] == pytest.approx(
        {"item": -1, "creator": -2 / 3, "category": -1, "neighbours": -0.5, "other": 2}
    )
    # quality (and every item-level reason, and skip): [X+1 .. X+4] -> creator 2/4, category 2/4, other 1/4.
    for reason in ("quality", "repetitive", "offensive", "unknown", "skip"):
        assert got[reason] == pytest.approx(
            {"item": -1, "creator": -1 / 3, "category": 0, "neighbours": 0, "other": 0}
        )
    # Every pair gives the same change, so the bootstrap has nothing to vary.
    assert result["reasons"]["creator"]["creator"]["ci95"] == pytest.approx([-1, -1])
    assert result["pairs"] == 200


def test_a_ranker_that_ignores_negatives_has_zero_responsiveness():
    config = CounterfactualConfig(
        num_pairs=100, k=4, min_prefix=2, neighbours=2, bootstrap=100, reasons=("creator",)
    )
    result = run_counterfactual(RuleRanker(ignore_negatives=True), histories_on_multiples_of_three(), config)
    for share in SHARES:
        r = result["reasons"]["creator"][share]
        assert r["value"] == 0 and r["ci95"][0] <= 0 <= r["ci95"][1]


def test_pairs_are_reproducible_and_refuse_short_histories():
    config = CounterfactualConfig(num_pairs=50, min_prefix=2, seed=9)
    index = {item["item_id"]: i for i, item in enumerate(ITEMS)}
    histories = histories_on_multiples_of_three()
    first, second = sample_pairs(histories, index, config), sample_pairs(histories, index, config)
    assert first == second and all(len(p.prefix) >= 2 for p in first)
    with pytest.raises(ValueError, match="min_prefix"):
        sample_pairs([h[:2] for h in histories], index, config)
