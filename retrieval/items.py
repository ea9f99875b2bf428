"""Item-side lookups the model needs, built once from WORKDIR/data: creator and categories of
every item id, each reason's granularity, and the logQ of each item for sampled softmax.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ntr.pipelines.events import ACTIONS, GRANULARITY_CODE, REASON_GRANULARITY, Granularity
from ntr.retrieval.data import NUM_RESERVED, OOV_ID, PAD_ID, load_items, load_vocab

MAX_CATEGORIES = 2  # categories kept per item (the world and KuaiRand have at most 2)


@dataclasses.dataclass(frozen=True)
class ItemTable:
    """Arrays indexed by token id (0 = padding, 1 = OOV, then vocab order).

    Attributes:
      item_ids: item id strings of the real items, in id order (`id - NUM_RESERVED`).
      item_creator: [num_item_tokens] int32 creator token of each item (PAD_ID when none).
      item_categories: [num_item_tokens, MAX_CATEGORIES] int32 category tokens, PAD_ID padded.
      reason_granularity: [num_reason_tokens] int32 `GRANULARITY_CODE` of each reason id.
      item_log_q: [num_items] float32 log of each real item's share of positive train targets
        (add-one smoothed), for logQ correction.
      num_actions / num_reasons / num_creators / num_categories: token counts incl. reserved.
      vocab_hash: the data directory's vocab hash (copied to exports for compatibility checks).
    """

    item_ids: list[str]
    item_creator: np.ndarray
    item_categories: np.ndarray
    reason_granularity: np.ndarray
    item_log_q: np.ndarray
    num_actions: int
    num_reasons: int
    num_creators: int
    num_categories: int
    vocab_hash: str

    @property
    def num_items(self) -> int:
        """Real items (candidates); token ids run to num_items + NUM_RESERVED."""
        return len(self.item_ids)


def _ids(tokens: list[str]) -> dict[str, int]:
    return {token: i + NUM_RESERVED for i, token in enumerate(tokens)}


def positive_counts(data_dir: str, items: list[str]) -> np.ndarray:
    """[len(items)] int64 positive train targets per item, from data/item_counts.tsv (0 if absent)."""
    row = {item: i for i, item in enumerate(items)}
    counts = np.zeros(len(items), np.int64)
    path = os.path.join(data_dir, "item_counts.tsv")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                name, _, count = line.rstrip("\n").partition("\t")
                if name in row:
                    counts[row[name]] += int(count)
    return counts


def load_item_table(data_dir: str) -> ItemTable:
    """Build the `ItemTable` of a preprocessed data directory."""
    items = load_vocab(data_dir, "items")
    actions = load_vocab(data_dir, "actions")
    if actions != list(ACTIONS):
        raise ValueError(
            f"{data_dir}/vocab/actions.txt differs from this ntr's actions: re-run `ntr preprocess`."
        )
    reasons = load_vocab(data_dir, "reasons")
    creators, categories = load_vocab(data_dir, "creators"), load_vocab(data_dir, "categories")
    item_id, creator_id, category_id = _ids(items), _ids(creators), _ids(categories)
    item_creator = np.full(len(items) + NUM_RESERVED, PAD_ID, np.int32)
    item_categories = np.full((len(items) + NUM_RESERVED, MAX_CATEGORIES), PAD_ID, np.int32)
    for row in load_items(data_dir):
        token = item_id.get(row["item_id"])
        if token is None:
            continue
        if row["creator_id"]:
            item_creator[token] = creator_id.get(row["creator_id"], OOV_ID)
        for j, category in enumerate(row["categories"][:MAX_CATEGORIES]):
            item_categories[token, j] = category_id.get(category, OOV_ID)
    granularity = np.zeros(len(reasons) + NUM_RESERVED, np.int32)
    for i, reason in enumerate(reasons):
        known = REASON_GRANULARITY.get(reason, Granularity.ITEM)
        granularity[i + NUM_RESERVED] = GRANULARITY_CODE[known]
    # add-one: unseen items keep a finite logQ
    counts = 1.0 + positive_counts(data_dir, items).astype(np.float64)
    stats_path = os.path.join(data_dir, "stats.json")
    with open(stats_path, encoding="utf-8") as handle:
        vocab_hash = json.load(handle)["vocab_hash"]
    return ItemTable(
        item_ids=items,
        item_creator=item_creator,
        item_categories=item_categories,
        reason_granularity=granularity,
        item_log_q=np.log(counts / counts.sum()).astype(np.float32),
        num_actions=len(actions) + NUM_RESERVED,
        num_reasons=len(reasons) + NUM_RESERVED,
        num_creators=len(creators) + NUM_RESERVED,
        num_categories=len(categories) + NUM_RESERVED,
        vocab_hash=vocab_hash,
    )
