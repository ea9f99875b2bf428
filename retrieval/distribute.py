"""Where a training process stands in a cluster, and what only the chief may do.

`tf.distribute.MultiWorkerMirroredStrategy` runs the same program in every worker. All of
them must take part in a checkpoint save (variables are read collectively), but only the
chief's files count: the others write to a scratch folder of their own and delete it, as the
TensorFlow multi-worker guide prescribes. Every worker restores from the chief's files.
"""

from __future__ import annotations

import json
import os
import shutil

from ntr.tfenv import tf

TF_CONFIG = "TF_CONFIG"


def multi_worker_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy from `TF_CONFIG` (ring all-reduce: CPU workers here; NCCL
    would need GPUs). Must run before TensorFlow's runtime starts in this process."""
    if not os.environ.get(TF_CONFIG):
        raise ValueError(
            "--strategy multi_worker reads the cluster from the TF_CONFIG environment variable, "
            "which is not set: set it on each worker (README, 'Beyond one machine'), or run "
            "`ntr train --local-workers N` to start N workers on this machine."
        )
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def worker_index(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(this worker's index, number of workers); (0, 1) outside a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return 0, 1
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    index = resolver.task_id if resolver.task_type == "worker" else 0
    # With an explicit "chief" task the workers are numbered after it.
    return (index + 1 if "chief" in spec and resolver.task_type == "worker" else index), workers


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one process whose files are the run's (worker 0, or the "chief" task)."""
    return worker_index(strategy)[0] == 0


def write_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """Where this worker saves: `model_dir` for the chief, a scratch folder for the others."""
    index, _ = worker_index(strategy)
    return model_dir if index == 0 else os.path.join(model_dir, ".workers", f"worker-{index}")


def remove_scratch(model_dir: str, strategy: tf.distribute.Strategy) -> None:
    """Deletes this worker's scratch folder (nothing for the chief)."""
    path = write_dir(model_dir, strategy)
    if path != model_dir:
        shutil.rmtree(path, ignore_errors=True)
        try:
            os.rmdir(os.path.dirname(path))  # the last worker out removes `.workers`
        except OSError:
            pass  # another worker's folder is still there


def agreed_mean(strategy: tf.distribute.Strategy, value: float) -> float:
    """The mean of `value` over the workers, the same number in each of them, so that
    decisions taken on it (best epoch, early stop) cannot part the workers' ways."""
    if worker_index(strategy)[1] == 1:
        return value

    @tf.function  # collectives run eagerly are slow and warned about
    def mean(v):
        per_replica = strategy.run(tf.identity, args=(v,))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)

    return float(mean(tf.constant(value, tf.float64)))


def local_cluster(num_workers: int, ports: list[int]) -> list[str]:
    """The TF_CONFIG of each of `num_workers` workers on loopback `ports`."""
    hosts = [f"127.0.0.1:{port}" for port in ports[:num_workers]]
    return [
        json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
        for i in range(num_workers)
    ]
