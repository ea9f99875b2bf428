"""Training: any tf.distribute strategy, checkpoints that survive a kill, early stopping.

Resuming is exact in data order: epoch e is shuffled with seed `train.seed + e`, and a
checkpoint records how many batches of the epoch were done, so a resumed run skips exactly
those. Only dropout masks differ from an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable

from ntr.pipelines.atomic import write_json
from ntr.retrieval.config import RetrievalConfig
from ntr.retrieval.data import sequence_dataset, window_share
from ntr.retrieval.distribute import (
    agreed_mean,
    is_chief,
    multi_worker_strategy,
    remove_scratch,
    worker_index,
    write_dir,
)
from ntr.retrieval.evaluate import validation_ndcg
from ntr.retrieval.items import ItemTable, load_item_table
from ntr.retrieval.model import NTRModel
from ntr.retrieval.optimizer import make_optimizer, resolve_optimizer
from ntr.retrieval.reaction import apply_reaction, fit_reaction
from ntr.tfenv import tf

CONFIG_FILE = "config.json"
BEST_DIR = os.path.join("checkpoints", "best")


@dataclasses.dataclass
class TrainProgress:
    """What the progress callback receives after each step."""

    epoch: int
    epochs: int
    step_in_epoch: int
    steps_per_epoch: int
    loss: float
    targets_per_second: float


def make_strategy(name: str) -> tf.distribute.Strategy:
    """`default`, `mirrored` (all visible devices, e.g. logical CPUs), `one_device`, or
    `multi_worker` (the cluster in `TF_CONFIG`, `ntr.retrieval.distribute`)."""
    if name == "multi_worker":
        return multi_worker_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")
        ]
        return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(tf.config.list_logical_devices()[0].name)
    raise ValueError(f"unknown strategy {name!r}: use default, mirrored, one_device or multi_worker.")


def apply_precision(precision: str, log: Callable[[str], None] = print) -> str:
    """Sets Keras' global dtype policy for `train.precision` and returns the one in force.

    Mixed precision pays on GPUs only; on a machine without one, training stays float32 and
    says so. (The GPU path is not exercised here: the lent GPU machines carry no TensorFlow.)
    """
    if precision != "float32" and not tf.config.list_physical_devices("GPU"):
        log(f"train.precision={precision} needs a GPU and none is visible: training in float32.")
        precision = "float32"
    tf.keras.mixed_precision.set_global_policy(precision)
    return precision


def split_logical_cpus(count: int) -> None:
    """Expose `count` logical CPU devices (before TF initialises), e.g. to test MirroredStrategy."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def model_metadata(config: RetrievalConfig, data_dir: str, table: ItemTable) -> dict:
    return {"config": config.to_dict(), "data_dir": os.path.abspath(data_dir), "vocab_hash": table.vocab_hash}


def check_model_dir(model_dir: str, metadata: dict) -> None:
    """Refuse to resume a directory trained with another config or data."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        old = json.load(handle)
    if isinstance(old.get("config"), dict):
        # A field added since that run reads as its default, which is how that run trained.
        old["config"] = RetrievalConfig.from_dict(old["config"]).to_dict()
    for key in ("config", "vocab_hash"):
        if old.get(key) != metadata[key]:
            raise ValueError(
                f"{model_dir} holds a model trained with a different {key}; pass --fresh to start "
                "over there, or choose another --variant / --model-dir."
            )


def _split_windows(data_dir: str) -> dict[str, int]:
    """Windows per split from stats.json; raises, saying what to change, when train or valid has none."""
    path = os.path.join(data_dir, "stats.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {path}: run `ntr preprocess --workdir ...` first.")
    with open(path, encoding="utf-8") as handle:
        windows = json.load(handle)["splits"]
    if not windows.get("train") or not windows.get("valid"):
        raise ValueError(
            f"{data_dir} has {windows} windows; training needs train and valid ones. Re-run "
            "`ntr preprocess` on a bigger log, or with lower --holdout-events / --min-train-events."
        )
    return windows


def _train_batches(config: RetrievalConfig, data_dir: str, epoch: int, skip: int) -> tf.data.Dataset:
    dataset = sequence_dataset(
        data_dir,
        "train",
        config.train.batch_size,
        config.model.max_len,
        shuffle=True,
        seed=config.train.seed + epoch,
    )
    # Strings cannot go through strategy.run on every device; the model does not need them.
    dataset = dataset.map(lambda b: {k: v for k, v in b.items() if k != "user_id"}).skip(skip)
    # Across workers, each takes its share of every global batch (the same steps in each, and
    # the resume skip counts global batches); the default would shard by file, and there may
    # be one train file.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def build_model(config: RetrievalConfig, data_dir: str, table: ItemTable | None = None) -> NTRModel:
    """An `NTRModel` with its variables created (call inside a strategy scope to mirror them)."""
    table = table or load_item_table(data_dir)
    model = NTRModel(config, table)
    batch = next(iter(sequence_dataset(data_dir, "train", 2, config.model.max_len)))
    model.target_queries(batch)
    model.candidate_embeddings()
    return model


def make_train_step(
    model: NTRModel, optimizer: tf.keras.optimizers.Optimizer, strategy: tf.distribute.Strategy
):
    """A compiled step: (distributed) batch -> (loss, number of targets), summed over replicas."""

    @tf.function
    def train_step(batch):
        def step_fn(inputs):
            scaling = isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
            with tf.GradientTape() as tape:
                loss = model.compute_loss(inputs, training=True)
                scaled = loss / strategy.num_replicas_in_sync
                to_differentiate = optimizer.get_scaled_loss(scaled) if scaling else scaled
            gradients = tape.gradient(to_differentiate, model.trainable_variables)
            if scaling:  # float16 gradients underflow without it
                gradients = optimizer.get_unscaled_gradients(gradients)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
            return scaled, tf.reduce_sum(inputs["is_target"])

        loss, targets = strategy.run(step_fn, args=(batch,))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, targets, axis=None),
        )

    return train_step


def train(
    config: RetrievalConfig,
    data_dir: str,
    model_dir: str,
    progress: Callable[[TrainProgress], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Train (or resume) in `model_dir`; returns the summary also written to metrics.json.

    The best epoch by validation NDCG@`train.eval_k` is kept in checkpoints/best; training
    stops after `train.patience` epochs without improvement. Under `multi_worker` every
    worker calls this; only the chief (worker 0) writes `model_dir`'s files, and all restore
    from them.
    """
    windows = _split_windows(data_dir)  # before anything is built or written
    # First TensorFlow call: a multi-worker strategy must exist before the runtime starts.
    strategy = make_strategy(config.train.strategy)
    chief, (index, workers) = is_chief(strategy), worker_index(strategy)
    table = load_item_table(data_dir)
    metadata = model_metadata(config, data_dir, table)
    check_model_dir(model_dir, metadata)
    own_dir = write_dir(model_dir, strategy)
    os.makedirs(own_dir, exist_ok=True)
    if chief:
        with open(os.path.join(model_dir, CONFIG_FILE), "w", encoding="utf-8") as handle:
            json.dump(metadata, handle, indent=2, sort_keys=True)

    precision = apply_precision(config.train.precision, log if chief else lambda _: None)
    with strategy.scope():
        model = build_model(config, data_dir, table)
        optimizer = make_optimizer(config.train.optimizer, config.train.learning_rate, not model.full_softmax)
        if precision == "mixed_float16":
            optimizer = tf.keras.mixed_precision.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    state = {
        name: tf.Variable(value, trainable=False, name=name)
        for name, value in dict(
            step=0, epoch=0, step_in_epoch=0, best_ndcg=-1.0, best_epoch=-1, bad_epochs=0, done=0
        ).items()
    }
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **state)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(own_dir, "checkpoints"), max_to_keep=2)
    best = tf.train.Checkpoint(model=model)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))  # the chief's
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        log(
            f"resuming from {latest}: epoch {int(state['epoch']) + 1}, "
            f"{int(state['step_in_epoch'])} batches into it"
        )

    train_step = make_train_step(model, optimizer, strategy)

    writer = (
        tf.summary.create_file_writer(os.path.join(model_dir, "logs"))
        if chief
        else tf.summary.create_noop_writer()
    )
    steps_per_epoch = math.ceil(windows["train"] / config.train.batch_size)
    valid_share, valid_rows = window_share(data_dir, "valid", config.train.valid_windows)
    if valid_share < 1.0:
        # Each validation ranks every window against the whole catalogue: at 10^6 items and
        # 10^5 windows that is most of an epoch's time, so early stopping reads a fixed sample.
        log(
            f"validating on a fixed {valid_share:.1%} of the {valid_rows} valid windows (train.valid_windows)"
        )
    started = time.perf_counter()
    total_targets = 0
    while not int(state["done"]) and int(state["epoch"]) < config.train.epochs:
        epoch = int(state["epoch"])
        skip = int(state["step_in_epoch"])
        batches = strategy.experimental_distribute_dataset(_train_batches(config, data_dir, epoch, skip))
        window_start, window_targets = time.perf_counter(), 0
        for batch in batches:
            loss, targets = train_step(batch)
            state["step"].assign_add(1)
            state["step_in_epoch"].assign_add(1)
            window_targets += int(targets)
            total_targets += int(targets)
            rate = window_targets / max(time.perf_counter() - window_start, 1e-9)
            step = int(state["step"])
            if step % 10 == 0:
                with writer.as_default(step=step):
                    tf.summary.scalar("train/loss", loss)
                    tf.summary.scalar("train/targets_per_second", rate)
            if progress and chief:
                progress(
                    TrainProgress(
                        epoch,
                        config.train.epochs,
                        int(state["step_in_epoch"]),
                        steps_per_epoch,
                        float(loss),
                        rate,
                    )
                )
            if step % config.train.checkpoint_every == 0:
                manager.save(checkpoint_number=step)
        ndcg = agreed_mean(strategy, validation_ndcg(model, data_dir, config.train.eval_k, share=valid_share))
        with writer.as_default(step=int(state["step"])):
            tf.summary.scalar(f"valid/ndcg@{config.train.eval_k}", ndcg)
        improved = ndcg > float(state["best_ndcg"])
        if improved:
            state["best_ndcg"].assign(ndcg)
            state["best_epoch"].assign(epoch)
            state["bad_epochs"].assign(0)
            best.write(os.path.join(own_dir, BEST_DIR, "model"))
        else:
            state["bad_epochs"].assign_add(1)
        log(
            f"epoch {epoch + 1}/{config.train.epochs}: valid ndcg@{config.train.eval_k} {ndcg:.4f}"
            f"{' (best)' if improved else ''}"
        )
        state["epoch"].assign_add(1)
        state["step_in_epoch"].assign(0)
        if int(state["bad_epochs"]) >= config.train.patience:
            log(f"early stop: no better valid ndcg for {config.train.patience} epochs")
            state["done"].assign(1)
        manager.save(checkpoint_number=int(state["step"]))
    writer.flush()
    elapsed = time.perf_counter() - started
    summary = {
        "precision": precision,
        "optimizer": resolve_optimizer(config.train.optimizer, not model.full_softmax),
        "best_epoch": int(state["best_epoch"]) + 1,
        "epochs_run": int(state["epoch"]),
        "steps": int(state["step"]),
        f"valid_ndcg@{config.train.eval_k}": float(state["best_ndcg"]),
        "valid_share": valid_share,
        "seconds_this_run": round(elapsed, 2),
        "targets_per_second_this_run": round(total_targets / max(elapsed, 1e-9), 1),
        "num_replicas": strategy.num_replicas_in_sync,
        "workers": workers,
        "worker_index": index,
    }
    if chief and config.model.fit_reaction:
        summary["reaction"] = _fit_and_record(model_dir, data_dir, log)
    if chief:
        write_json(os.path.join(model_dir, "metrics.json"), summary)
    remove_scratch(model_dir, strategy)
    return summary


def _fit_and_record(model_dir: str, data_dir: str, log: Callable[[str], None]) -> dict:
    """Fit the reaction on the best checkpoint (`retrieval.reaction`) and record it in config.json,
    where `load_trained` reads it; the checkpoint itself stays as training left it."""
    path = os.path.join(model_dir, CONFIG_FILE)
    with open(path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    metadata.pop("reaction", None)  # fit from the trained strengths, not from an earlier fit
    write_json(path, metadata)
    record = fit_reaction(load_trained(model_dir, data_dir), data_dir, log=log)
    metadata["reaction"] = record
    write_json(path, metadata)
    return record


def load_trained(model_dir: str, data_dir: str) -> NTRModel:
    """The best checkpoint of `model_dir`, checked against `data_dir`'s vocabularies."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: run `ntr train` first.")
    with open(path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    table = load_item_table(data_dir)
    if metadata["vocab_hash"] != table.vocab_hash:
        raise ValueError(
            f"{model_dir} was trained on data with vocab hash {metadata['vocab_hash'][:12]}, but "
            f"{data_dir} has {table.vocab_hash[:12]}: retrain with `ntr train` on this data."
        )
    best_prefix = os.path.join(model_dir, BEST_DIR, "model")
    if not tf.io.gfile.exists(best_prefix + ".index"):
        raise FileNotFoundError(f"{best_prefix} is missing: training has not finished an epoch yet.")
    model = build_model(RetrievalConfig.from_dict(metadata["config"]), data_dir, table)
    tf.train.Checkpoint(model=model).read(best_prefix).assert_existing_objects_matched()
    if "reaction" in metadata:  # strengths fitted on validation after training
        apply_reaction(model, metadata["reaction"])
    return model
