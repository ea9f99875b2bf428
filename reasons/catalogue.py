"""Catalogue vectors: one MiniLM embedding per item description, computed once.

`ntr reasons train` embeds the whole catalogue (through the on-disk `EmbeddingCache`, so a
second run encodes nothing) and saves the vectors next to the model (item_vectors.npy +
item_ids.json), so labelling and serving start without encoding the catalogue again. An item
added to the catalogue after training is encoded on first use, alone, so its vector does not
depend on what else was encoded with it.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ntr.reasons.features import DIM, item_description

VECTORS_FILE, IDS_FILE = "item_vectors.npy", "item_ids.json"


class ItemVectors:
    """item id -> [384] float32 vector of its description."""

    def __init__(self, items: dict[str, dict], vectors: dict[str, np.ndarray] | None = None, encoder=None):
        """Args:
        items: the catalogue by item id (descriptions of items without a vector come from it).
        vectors: the known vectors by item id.
        encoder: a `TextEncoder` for items without a vector (default: MiniLM, loaded on first use).
        """
        self.items = items
        self.vectors = dict(vectors or {})
        self._encoder = encoder

    @classmethod
    def embed(cls, items: dict[str, dict], cache) -> ItemVectors:
        """Every catalogue item, through `cache` (an `EmbeddingCache`: encodes only new texts)."""
        ids = sorted(items)
        matrix = cache.encode([item_description(items[i]) for i in ids])
        return cls(items, dict(zip(ids, matrix, strict=True)))

    @classmethod
    def load(cls, directory: str, items: dict[str, dict], encoder=None) -> ItemVectors:
        """The vectors saved by `save` in `directory`, for the catalogue `items`."""
        with open(os.path.join(directory, IDS_FILE), encoding="utf-8") as handle:
            ids = json.load(handle)
        matrix = np.load(os.path.join(directory, VECTORS_FILE))
        if matrix.shape != (len(ids), DIM):
            raise ValueError(
                f"{directory}: {VECTORS_FILE} has shape {matrix.shape} for {len(ids)} items; "
                "retrain the reason model to rebuild it."
            )
        return cls(items, dict(zip(ids, matrix, strict=True)), encoder)

    def save(self, directory: str) -> None:
        ids = sorted(self.vectors)
        os.makedirs(directory, exist_ok=True)
        np.save(os.path.join(directory, VECTORS_FILE), np.stack([self.vectors[i] for i in ids]))
        with open(os.path.join(directory, IDS_FILE), "w", encoding="utf-8") as handle:
            json.dump(ids, handle)

    def __getitem__(self, item_id: str) -> np.ndarray:
        vector = self.vectors.get(item_id)
        if vector is None:
            if self._encoder is None:
                from ntr.reasons.encoder import TextEncoder  # noqa: PLC0415 (torch only when needed)

                self._encoder = TextEncoder()
            vector = self._encoder.encode([item_description(self.items[item_id])])[0]
            self.vectors[item_id] = vector
        return vector
