"""RecTools' SASRec on an exported split (runs in the peer environment, not ntr's).

RecTools needs numpy < 2 and pandas < 3, which ntr's pinned set does not allow, so this script
imports nothing from ntr and runs in its own virtual environment (README: "A peer in the quality
tables"). Input, from `benchmarks.peer_sasrec` (ntr's environment):

- `train.tsv`: user_id, item_id, timestamp of every positive event of the train split;
- `queries.jsonl`: per positive test target, `{"query", "history": [item ids, oldest first]}`.

Output `ranked.jsonl`: per query `{"query", "top": [item ids, best first]}` (`--k` of them, no
filtering: the caller removes history items as ntr's evaluation does).

    python benchmarks/peer/sasrec_rectools.py --input DIR --output FILE [--seed 0] [--epochs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from rectools import Columns
from rectools.dataset import Dataset
from rectools.models import SASRecModel


def last_interaction_mask(interactions: pd.DataFrame, **_) -> np.ndarray:
    """Validation: each user's last train interaction (users with at least 3), for early stopping."""
    ordered = interactions.sort_values([Columns.User, Columns.Datetime])
    rank = ordered.groupby(Columns.User).cumcount(ascending=False)
    count = ordered.groupby(Columns.User)[Columns.Item].transform("size")
    mask = pd.Series(False, index=interactions.index)
    mask.loc[ordered.index] = ((rank == 0) & (count >= 3)).to_numpy()
    return mask.to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="folder with train.tsv and queries.jsonl")
    parser.add_argument("--output", required=True, help="ranked.jsonl to write")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument(
        "--epochs", type=int, default=50, help="most epochs (early stopping on validation loss)"
    )
    parser.add_argument(
        "--patience", type=int, default=3, help="epochs without a lower validation loss before stopping"
    )
    parser.add_argument("--k", type=int, default=200, help="items per query (before the caller's filter)")
    parser.add_argument("--dim", type=int, default=64, help="n_factors")
    parser.add_argument("--max-len", type=int, default=50, help="session_max_len")
    args = parser.parse_args()
    pl.seed_everything(args.seed, workers=True)
    torch.set_num_threads(os.cpu_count() or 1)

    train = pd.read_csv(
        os.path.join(args.input, "train.tsv"), sep="\t", dtype={"user_id": str, "item_id": str}
    )
    train = pd.DataFrame(
        {
            Columns.User: train["user_id"],
            Columns.Item: train["item_id"],
            Columns.Weight: 1.0,
            Columns.Datetime: pd.to_datetime(train["timestamp"], unit="s"),
        }
    )
    with open(os.path.join(args.input, "queries.jsonl"), encoding="utf-8") as handle:
        queries = [json.loads(line) for line in handle]

    def trainer() -> pl.Trainer:
        return pl.Trainer(
            max_epochs=args.epochs,
            min_epochs=1,
            deterministic=True,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
            accelerator="cpu",
            callbacks=[EarlyStopping(monitor="val_loss", patience=args.patience, mode="min")],
        )

    model = SASRecModel(
        n_blocks=2,
        n_heads=2,
        n_factors=args.dim,
        dropout_rate=0.2,
        session_max_len=args.max_len,
        loss="softmax",
        lr=1e-3,
        batch_size=128,
        epochs=args.epochs,
        deterministic=True,
        get_val_mask_func=last_interaction_mask,
        get_trainer_func=trainer,
    )
    started = time.perf_counter()
    model.fit(Dataset.construct(train))
    fit_seconds = time.perf_counter() - started

    rows = []
    for q in queries:
        for position, item in enumerate(q["history"]):
            rows.append((q["query"], item, position))
    history = pd.DataFrame(rows, columns=[Columns.User, Columns.Item, "position"])
    history = pd.DataFrame(
        {
            Columns.User: history[Columns.User],
            Columns.Item: history[Columns.Item],
            Columns.Weight: 1.0,
            Columns.Datetime: pd.Timestamp("2000-01-01") + pd.to_timedelta(history["position"], unit="s"),
        }
    )
    users = sorted({q["query"] for q in queries if q["history"]})
    top = {}
    if users:
        known = history[Columns.Item].isin(set(model.data_preparator.get_known_item_ids()))
        users = sorted(set(history.loc[known, Columns.User]))  # RecTools drops users with no known item
        recs = model.recommend(users=users, dataset=Dataset.construct(history), k=args.k, filter_viewed=False)
        recs = recs.sort_values([Columns.User, Columns.Rank])
        top = recs.groupby(Columns.User)[Columns.Item].apply(list).to_dict()
    with open(args.output, "w", encoding="utf-8") as handle:
        for q in queries:
            handle.write(
                json.dumps({"query": q["query"], "top": [str(i) for i in top.get(q["query"], [])]}) + "\n"
            )
    with open(args.output + ".meta.json", "w", encoding="utf-8") as handle:
        json.dump(
            {"fit_seconds": round(fit_seconds, 1), "epochs_run": int(model.fit_trainer.current_epoch)}, handle
        )


if __name__ == "__main__":
    main()
