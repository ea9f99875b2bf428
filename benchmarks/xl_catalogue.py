"""A catalogue that needs the sampled path: the `xl` world (10^5 items, ~10^6 events) end to end.

Runs, timing each step on this machine: `ntr generate --scale xl`, `ntr preprocess`, `ntr train`
of `ntr` (`model.softmax=auto`, which is the sampled softmax above 50,000 items), `ntr
evaluate` on the test split (full-corpus ranking over every item), and `ntr index --k 10
--target-recall 0.95` (a ScaNN tree + AH index at this size). Then it times the index against
brute force on held-out validation queries, one query at a time as the service asks. With
`--full-softmax-steps N` it also times N steps of the same model with a full softmax over
every item, and with `--full-softmax-epochs N` it trains and evaluates that model too. Serving latency on this world:
`python -m benchmarks.serving_load --workdir WORKDIR --section serving_load_xl`.

    python -m benchmarks.xl_catalogue [--workdir /tmp/ntr-bench-xl] [--epochs 3] [--full-softmax-epochs 3]
        [--full-softmax-steps 30]
"""

from __future__ import annotations

import argparse
import json
import os

from benchmarks.common import NTR, qps, run_measured, tf_train_rate, train_batches, write_section

K = 10


def full_softmax_rate(workdir: str, steps: int) -> tuple[float, float]:
    """(targets/s, seconds per step) of `steps` full-softmax training steps after 3 warm-up."""
    from ntr.retrieval.config import for_variant, with_overrides  # noqa: PLC0415
    from ntr.retrieval.items import load_item_table  # noqa: PLC0415

    data = os.path.join(workdir, "data")
    config = with_overrides(for_variant("ntr"), ["model.softmax=full"])
    targets, seconds = tf_train_rate(config, load_item_table(data), train_batches(data, config, steps + 3))
    return targets / seconds, seconds / max(1, steps)


def index_speed(workdir: str) -> dict:
    from ntr.cli.index import held_out_queries  # noqa: PLC0415
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.serving.index import load_index  # noqa: PLC0415
    from ntr.serving.topk import BruteForce  # noqa: PLC0415

    model = ExportedModel(os.path.join(workdir, "models", "ntr"))
    index, manifest = load_index(os.path.join(workdir, "index"), model.export)
    queries = held_out_queries(model, os.path.join(workdir, "data"), 1000)
    exact = BruteForce(model.embeddings)
    return {
        "manifest": manifest,
        "scann_qps": qps(index, queries, 1, K),
        "brute_qps": qps(exact, queries[:200], 1, K),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", default="/tmp/ntr-bench-xl", help="work directory (steps already done are kept)"
    )
    parser.add_argument("--seed", type=int, default=0, help="world and training seed")
    parser.add_argument(
        "--epochs", type=int, default=3, help="training epochs at most (early stopping applies)"
    )
    parser.add_argument(
        "--full-softmax-steps", type=int, default=30, help="timed full-softmax steps (0: none)"
    )
    parser.add_argument(
        "--full-softmax-epochs",
        type=int,
        default=0,
        help="also train and evaluate the same model with a full softmax for at most N epochs (0: do not)",
    )
    args = parser.parse_args()
    w = args.workdir
    base = [NTR]
    seconds = {}
    if not os.path.exists(os.path.join(w, "raw", "world.json")):
        seconds["generate"], _ = run_measured(
            [*base, "generate", "--scale", "xl", "--seed", str(args.seed), "--workdir", w]
        )
    if not os.path.exists(os.path.join(w, "data", "stats.json")):
        seconds["preprocess"], _ = run_measured([*base, "preprocess", "--workdir", w])
    if not os.path.exists(os.path.join(w, "models", "ntr", "saved_model")):
        seconds["train"], _ = run_measured(
            [
                *base,
                "train",
                "--workdir",
                w,
                "--variant",
                "ntr",
                "--seed",
                str(args.seed),
                "--epochs",
                str(args.epochs),
                "--no-progress",
            ]
        )
    if not os.path.exists(os.path.join(w, "reports", "evaluation-ntr.json")):
        seconds["evaluate"], _ = run_measured([*base, "evaluate", "--workdir", w, "--variant", "ntr"])
    if not os.path.exists(os.path.join(w, "index", "manifest.json")):
        seconds["index"], _ = run_measured(
            [*base, "index", "--workdir", w, "--variant", "ntr", "--k", str(K), "--target-recall", "0.95",
             "--no-tf-serving"]
        )  # fmt: skip
    full_dir = os.path.join(w, "models", "ntr-full-softmax")
    full_report = os.path.join(w, "reports", "evaluation-ntr-full-softmax.json")
    if args.full_softmax_epochs and not os.path.exists(os.path.join(full_dir, "saved_model")):
        seconds["train full softmax"], _ = run_measured(
            [*base, "train", "--workdir", w, "--variant", "ntr", "--seed", str(args.seed), "--epochs",
             str(args.full_softmax_epochs), "--set", "model.softmax=full", "--model-dir", full_dir, "--no-progress"]
        )  # fmt: skip
    if args.full_softmax_epochs and not os.path.exists(full_report):
        seconds["evaluate full softmax"], _ = run_measured(
            [
                *base,
                "evaluate",
                "--workdir",
                w,
                "--variant",
                "ntr",
                "--model-dir",
                full_dir,
                "--output",
                full_report,
            ]
        )
    with open(os.path.join(w, "raw", "world.json"), encoding="utf-8") as handle:
        world = json.load(handle)["summary"]
    with open(os.path.join(w, "data", "stats.json"), encoding="utf-8") as handle:
        stats = json.load(handle)
    with open(os.path.join(w, "models", "ntr", "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    with open(os.path.join(w, "models", "ntr", "config.json"), encoding="utf-8") as handle:
        trained_config = json.load(handle)["config"]
    model_config = trained_config["model"]
    with open(os.path.join(w, "reports", "evaluation-ntr.json"), encoding="utf-8") as handle:
        evaluation = json.load(handle)
    speed = index_speed(w)
    full = full_softmax_rate(w, args.full_softmax_steps) if args.full_softmax_steps else None

    manifest = speed["manifest"]
    recall = manifest["recall"]
    test = evaluation["metrics"]
    steps_per_epoch = -(-stats["splits"]["train"] // trained_config["train"]["batch_size"])
    lines = [
        f"World `--scale xl`, seed {args.seed}: {world['users']:,} users, {world['items']:,} items, "
        f"{stats['rows_in']:,} events; {stats['splits']['train']:,} train windows. Times below come from each "
        "step's own record (stats.json, metrics.json, the index manifest); wall times of the steps this run "
        "of the command did: "
        + (", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) or "none (all done earlier)")
        + ".\n",
        "| what | figure |",
        "|---|---|",
        f"| preprocess (DirectRunner, in-memory) | {stats['seconds']:.0f} s, {stats['events_per_second']:,.0f} events/s |",
        f"| train `ntr`, softmax `{model_config['softmax']}` (auto: sampled above "
        f"{model_config['full_softmax_max_items']:,} items; in-batch + {model_config['num_uniform_candidates']} uniform, logQ) | "
        f"{metrics['seconds_this_run']:.0f} s for {metrics['epochs_run']} epochs ({metrics['steps']:,} steps), "
        f"{metrics['targets_per_second_this_run']:,.0f} target tokens/s, best epoch {metrics['best_epoch']} |",
        f"| valid NDCG@10 (best epoch) | {metrics['valid_ndcg@10']:.4f} |",
        "| test NDCG@10 / recall@10 (full-corpus ranking, mean ± SE over targets) | "
        + " / ".join(f"{test[m]['mean']:.4f} ± {test[m]['se']:.4f}" for m in ("ndcg@10", "recall@10"))
        + " |",
        f"| index `{manifest['config']['kind']}` ({manifest['config'].get('num_leaves')} leaves), built and tuned | "
        f"{manifest['build_seconds']:.1f} s to build, {manifest['tune_seconds']:.1f} s to tune (from the manifest) |",
        f"| index recall@{recall['k']} vs brute force on held-out queries | {recall['measured']:.4f} "
        f"(target {recall['target']}: {'met' if recall['target_met'] else 'NOT met'}) |",
        f"| QPS, one query at a time, k={K}: ScaNN / brute force | {speed['scann_qps']:,.0f} / {speed['brute_qps']:,.0f} "
        f"({speed['scann_qps'] / speed['brute_qps']:.1f}×) |",
    ]
    if os.path.exists(full_report):
        with open(os.path.join(full_dir, "metrics.json"), encoding="utf-8") as handle:
            full_metrics = json.load(handle)
        with open(full_report, encoding="utf-8") as handle:
            full_test = json.load(handle)["metrics"]
        lines += [
            f"| train the same model with a full softmax over all {world['items']:,} items | "
            f"{full_metrics['seconds_this_run']:.0f} s for {full_metrics['epochs_run']} epochs "
            f"({full_metrics['steps']:,} steps), {full_metrics['targets_per_second_this_run']:,.0f} target tokens/s, "
            f"best epoch {full_metrics['best_epoch']} |",
            f"| full softmax: valid NDCG@10 / test NDCG@10 / test recall@10 | {full_metrics['valid_ndcg@10']:.4f} / "
            + " / ".join(
                f"{full_test[m]['mean']:.4f} ± {full_test[m]['se']:.4f}" for m in ("ndcg@10", "recall@10")
            )
            + " |",
        ]
    if full:
        lines.append(
            f"| full softmax over all {world['items']:,} items, same model, {args.full_softmax_steps} timed steps | "
            f"{full[0]:,.0f} target tokens/s, {full[1]:.2f} s/step: one epoch of {steps_per_epoch:,} steps would take "
            f"about {full[1] * steps_per_epoch / 60:.0f} min"
            f"{'' if os.path.exists(full_report) else ' (not trained here)'} |"
        )
    write_section(
        "xl_catalogue", "A 10^5-item catalogue end to end (sampled softmax, tree index)", "\n".join(lines)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
