"""Reads an export (retrieval/export.py) back: histories -> query embeddings, and the catalogue.

This is what serving and the simulator use; it needs no training code, only the files in
models/<variant>/ (saved_model/, item_embeddings.npy, item_ids.txt, items.jsonl, config.json).
"""

from __future__ import annotations

import json
import os

import numpy as np

from ntr.retrieval.export import ITEMS_FILE, SIGNATURE, histories_to_inputs
from ntr.tfenv import tf


class ExportedModel:
    """A loaded export.

    Attributes:
      model_dir: the folder it was loaded from.
      variant: the config's variant name.
      export: config.json["export"] (fingerprint, vocab_hash, dim, num_items).
      max_len: the longest history the query tower reads (older events are dropped).
      item_ids: [num_items] ids; item i is row i of `embeddings`.
      item_index: item id -> row.
      embeddings: [num_items, dim] float32 item embeddings.
      items: [num_items] catalogue rows (item_id, creator_id, categories, ...), same order.
    """

    def __init__(self, model_dir: str):
        config_path = os.path.join(model_dir, "config.json")
        if not os.path.exists(config_path):
            raise FileNotFoundError(f"no model at {model_dir} (config.json missing); run `ntr train` first.")
        with open(config_path, encoding="utf-8") as handle:
            metadata = json.load(handle)
        if "export" not in metadata:
            raise ValueError(
                f"{model_dir} has no export (config.json lacks `export`); training writes it when it "
                "finishes, so re-run `ntr train` to completion."
            )
        self.model_dir = model_dir
        self.metadata = metadata
        self.export = metadata["export"]
        self.variant = metadata["config"]["model"]["variant"]
        self.max_len = int(metadata["config"]["model"]["max_len"])
        with open(os.path.join(model_dir, "item_ids.txt"), encoding="utf-8") as handle:
            self.item_ids = [line.rstrip("\n") for line in handle]
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.embeddings = np.load(os.path.join(model_dir, "item_embeddings.npy")).astype(np.float32)
        self.items = self._load_items(model_dir, metadata)
        if not (len(self.item_ids) == len(self.embeddings) == len(self.items) == self.export["num_items"]):
            raise ValueError(
                f"{model_dir} is inconsistent: {len(self.item_ids)} ids, {len(self.embeddings)} embeddings, "
                f"{len(self.items)} catalogue rows, export says {self.export['num_items']}; re-export it."
            )
        self._serve = tf.saved_model.load(os.path.join(model_dir, "saved_model")).signatures[SIGNATURE]

    def _load_items(self, model_dir: str, metadata: dict) -> list[dict]:
        path = os.path.join(model_dir, ITEMS_FILE)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                return [json.loads(line) for line in handle]
        # Exports made before items.jsonl existed: read the catalogue from the data they came from.
        from ntr.retrieval.data import load_items  # noqa: PLC0415

        by_id = {item["item_id"]: item for item in load_items(metadata["data_dir"])}
        return [by_id.get(i, {"item_id": i, "creator_id": "", "categories": []}) for i in self.item_ids]

    @property
    def fingerprint(self) -> str:
        return self.export["fingerprint"]

    def known(self, history: list[dict]) -> tuple[list[dict], list[str]]:
        """Splits a history into events on catalogue items and the ids it does not know."""
        kept = [event for event in history if event["item_id"] in self.item_index]
        unknown = [event["item_id"] for event in history if event["item_id"] not in self.item_index]
        return kept, unknown

    def encode(self, histories: list[list[dict]]) -> np.ndarray:
        """Query embeddings of canonical event histories.

        Args:
          histories: per user, events (item_id, action, timestamp, watch_ms, duration_ms,
            reason) oldest first, on catalogue items only (see `known`); the last `max_len` count.

        Returns:
          [batch, dim] float32; a history with nothing the model can attend to gives zeros.
        """
        if not histories:
            return np.zeros((0, self.export["dim"]), np.float32)
        # Always max_len wide: the same history then gives bit-identical embeddings whatever else
        # is in the batch (a shorter pad changes float summation order in the attention).
        inputs = histories_to_inputs(histories, self.max_len)
        output = self._serve(**{name: tf.constant(value) for name, value in inputs.items()})
        return output["query_embedding"].numpy()
