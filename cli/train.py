"""`ntr train`: train a retriever variant on WORKDIR/data, export it to WORKDIR/models/<variant>."""

from __future__ import annotations

import argparse
import json
import os
import shutil

from ntr.retrieval.config import STRATEGIES, VARIANTS, RetrievalConfig, for_variant, with_overrides

HELP = (
    "Train the Transformer retriever (a variant of the ablation) with checkpoints, resume, early "
    "stopping on validation NDCG and TensorBoard logs, then export it for serving."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variant", default="ntr", choices=sorted(VARIANTS), help="ablation variant to train"
    )
    parser.add_argument("--config", help="JSON file with 'model' and/or 'train' sections (over the variant)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override one config field, e.g. --set model.dim=32 --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    parser.add_argument("--seed", type=int, help="shortcut for --set train.seed=N")
    parser.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy (default: default)")
    parser.add_argument(
        "--local-workers",
        type=int,
        default=0,
        metavar="N",
        help="start N multi-worker training processes on this machine (--strategy multi_worker)",
    )
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=0,
        help="split the CPU into N logical devices (for --strategy mirrored)",
    )
    parser.add_argument("--data-dir", help="preprocessed data (default WORKDIR/data)")
    parser.add_argument("--model-dir", help="output directory (default WORKDIR/models/<variant>)")
    parser.add_argument(
        "--fresh", action="store_true", help="delete the model directory first instead of resuming"
    )
    parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")


def resolve_config(args: argparse.Namespace) -> RetrievalConfig:
    """Variant preset, then the --config file, then --set, then the shortcut flags."""
    data = for_variant(args.variant).to_dict()
    if args.config:
        with open(args.config, encoding="utf-8") as handle:
            loaded = json.load(handle)
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.config} must hold a JSON object with 'model' / 'train' sections.")
        for section, values in loaded.items():
            if section not in data or not isinstance(values, dict):
                raise ValueError(f"{args.config}: unknown section {section!r}; use 'model' and 'train'.")
            data[section].update(values)
    overrides = list(args.set)
    for flag, field in (("epochs", "train.epochs"), ("seed", "train.seed"), ("strategy", "train.strategy")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{field}={json.dumps(value)}")
    return with_overrides(RetrievalConfig.from_dict(data), overrides)


def model_dir_for(args: argparse.Namespace) -> str:
    return args.model_dir or os.path.join(args.workdir, "models", args.variant)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    config = resolve_config(args)
    data_dir = args.data_dir or os.path.join(args.workdir, "data")
    model_dir = model_dir_for(args)
    if args.local_workers:
        if config.train.strategy not in ("default", "multi_worker"):
            raise ValueError(
                f"--local-workers runs --strategy multi_worker, not {config.train.strategy}: drop one."
            )
        from ntr.cli.local_workers import run_local_workers  # noqa: PLC0415

        if args.fresh and os.path.isdir(model_dir):  # here, not in each worker: they would race
            shutil.rmtree(model_dir)
        return run_local_workers(args.argv, args.local_workers)
    if args.cpu_devices:
        from ntr.retrieval.train import split_logical_cpus  # noqa: PLC0415 (TF starts here)

        split_logical_cpus(args.cpu_devices)
    from ntr.cli.progress import TrainingBar  # noqa: PLC0415
    from ntr.retrieval.export import export_model  # noqa: PLC0415
    from ntr.retrieval.train import load_trained, train  # noqa: PLC0415

    if args.fresh and os.path.isdir(model_dir):
        shutil.rmtree(model_dir)
    print(f"training {config.model.variant} on {data_dir} -> {model_dir}")
    summary = train(config, data_dir, model_dir, progress=None if args.no_progress else TrainingBar())
    if summary["worker_index"] != 0:
        return 0  # the chief exports
    model = load_trained(model_dir, data_dir)
    exported = export_model(model, data_dir, model_dir)
    print(
        f"best epoch {summary['best_epoch']} of {summary['epochs_run']}: valid ndcg@{config.train.eval_k} "
        f"{summary[f'valid_ndcg@{config.train.eval_k}']:.4f}; "
        f"{summary['targets_per_second_this_run']:,.0f} targets/s"
    )
    print(
        f"exported {model_dir}/saved_model, item_embeddings.npy (fingerprint {exported['fingerprint'][:12]})"
    )
    return 0
