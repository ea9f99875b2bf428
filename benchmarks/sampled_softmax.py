"""Sampled softmax against the full one on the 10^5-item world: one change at a time.

Each arm is `ntr train` of one variant on the `xl` world (10^5 items) with its `--set`
overrides, then `ntr evaluate` on the test split (full-corpus ranking over every item). The
table gives, per arm and seed: valid NDCG@10 per epoch, the best epoch, test NDCG@10 ± SE,
training speed in target tokens/s (from the run's own metrics.json), and both as a ratio to the
full-softmax arm of the same seed. Runs already done are kept (delete the arm's folder to redo
one): the full softmax takes about 11 minutes an epoch on 2 cores.

Speed is only comparable between runs that had the machine to themselves; the table says so
next to each figure's source.

    python -m benchmarks.sampled_softmax [--workdir /tmp/ntr-bench-xl] [--arms full,mix512,...]
        [--seeds 0] [--epochs 4]
"""

from __future__ import annotations

import argparse
import glob
import json
import os

from benchmarks import common
from benchmarks.common import NTR, run, tf_train_rate, train_batches, write_section


def sampled(log_q: str, uniform: int, optimizer: str = "adam", note: str = "") -> tuple[str, list[str]]:
    """A sampled-softmax arm: (what it is, --set overrides). `model.softmax=sampled` is what
    `auto` picks above `full_softmax_max_items`; it and the optimizer are written out so the arm
    does not move when the defaults do."""
    return (
        f"sampled: in-batch + {uniform} uniform, logQ = {log_q}, {optimizer}{note}",
        [
            "model.softmax=sampled",
            f"model.sampled_log_q={log_q}",
            f"model.num_uniform_candidates={uniform}",
            f"train.optimizer={optimizer}",
        ],
    )


# name -> (what it is, --set overrides)
ARMS = {
    "full": ("full softmax over all items (reference)", ["model.softmax=full"]),
    "pop512": sampled("popularity", 512, note=" (the default before this issue)"),
    **{f"mix{n}": sampled("mixture", n) for n in (512, 2048, 4096, 8192)},
    **{f"mix{n}-lazy": sampled("mixture", n, "lazy_adam") for n in (512, 4096)},
    "pop512-lazy": sampled("popularity", 512, "lazy_adam"),
    "default": ("`ntr train` as it is now (softmax auto)", []),
}


def ensure_world(workdir: str, seed: int) -> None:
    if not os.path.exists(os.path.join(workdir, "raw", "world.json")):
        run([NTR, "generate", "--scale", "xl", "--seed", str(seed), "--workdir", workdir])
    if not os.path.exists(os.path.join(workdir, "data", "stats.json")):
        run([NTR, "preprocess", "--workdir", workdir])


def train_and_evaluate(workdir: str, variant: str, arm: str, seed: int, epochs: int) -> dict:
    """Trains and evaluates one arm (kept if already done); returns its figures."""
    suffix = f"softmax-{arm}-e{epochs}"
    overrides = [*ARMS[arm][1], f"train.epochs={epochs}"]
    test = common.train_and_evaluate(workdir, variant, seed, overrides, suffix)["metrics"]["ndcg@10"]
    model_dir = os.path.join(workdir, "models", common.model_tag(variant, seed, suffix))
    with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as handle:
        metrics = json.load(handle)
    return {
        "valid_by_epoch": read_valid_curve(model_dir),
        "best_epoch": metrics["best_epoch"],
        "epochs_run": metrics["epochs_run"],
        "tokens_per_s": metrics["targets_per_second_this_run"],
        "test": test["mean"],
        "se": test["se"],
    }


def read_valid_curve(model_dir: str) -> list[float]:
    """Valid NDCG@10 of every epoch, from the TensorBoard log `ntr train` writes (by step, so a
    resumed run's epochs come in order)."""
    import tensorflow as tf  # noqa: PLC0415

    points = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "logs", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "valid/ndcg@10":
                    points[event.step] = float(tf.make_ndarray(value.tensor))
    return [points[step] for step in sorted(points)]


def step_speeds(workdir: str, variant: str, arms: list[str], steps: int) -> dict[str, float]:
    """Target tokens/s of each arm's training step over the same `steps` batches, measured back
    to back in this process (after 3 untimed steps each), so the ratios share machine state."""
    from ntr.retrieval.config import for_variant, with_overrides  # noqa: PLC0415
    from ntr.retrieval.items import load_item_table  # noqa: PLC0415

    data = os.path.join(workdir, "data")
    table = load_item_table(data)
    out = {}
    for arm in arms:
        config = with_overrides(for_variant(variant), ARMS[arm][1])
        targets, seconds = tf_train_rate(config, table, train_batches(data, config, steps + 3))
        out[arm] = targets / seconds
        print(f"{arm}: {out[arm]:,.0f} target tokens/s over {steps} steps", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", default="/tmp/ntr-bench-xl", help="xl world work directory (made if missing)"
    )
    parser.add_argument("--variant", default="ntr", help="model variant")
    parser.add_argument("--arms", default="full,pop512,mix512,mix4096", help=f"arms, of {sorted(ARMS)}")
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated")
    parser.add_argument("--epochs", type=int, default=4, help="epochs at most (early stopping applies)")
    parser.add_argument("--section", default="sampled_softmax", help="BENCHMARKS.md section to write")
    parser.add_argument(
        "--speed-steps",
        type=int,
        default=30,
        help="also time this many training steps of every arm back to back in one process (0: do not)",
    )
    parser.add_argument(
        "--speed-only", action="store_true", help="only time the arms' steps (no training runs)"
    )
    args = parser.parse_args()
    arms = args.arms.split(",")
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {sorted(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    ensure_world(args.workdir, 0)
    lines = []
    if not args.speed_only:
        results = {
            (arm, seed): train_and_evaluate(args.workdir, args.variant, arm, seed, args.epochs)
            for seed in seeds
            for arm in arms
        }
        lines = [
            f"World `--scale xl` (10^5 items), variant `{args.variant}`, at most {args.epochs} epochs each (early "
            "stopping on valid NDCG@10). Test NDCG@10 over the full corpus, mean ± SE over targets. Speed is the "
            "run's own target tokens/s (metrics.json); ratios are to the full softmax of the same seed.\n",
            "| arm | seed | valid NDCG@10 by epoch | best epoch | test NDCG@10 | vs full | target tokens/s | speed vs full |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for seed in seeds:
            full = results.get(("full", seed))
            for arm in arms:
                r = results[(arm, seed)]
                curve = ", ".join(f"{v:.4f}" for v in r["valid_by_epoch"]) or "n/a"
                quality = f"{r['test'] / full['test']:.3f}" if full else "n/a"
                speed = f"{r['tokens_per_s'] / full['tokens_per_s']:.2f}×" if full else "n/a"
                lines.append(
                    f"| {ARMS[arm][0]} | {seed} | {curve} | {r['best_epoch']} of {r['epochs_run']} | "
                    f"{r['test']:.4f} ± {r['se']:.4f} | {quality} | {r['tokens_per_s']:,.0f} | {speed} |"
                )
    if args.speed_steps or args.speed_only:
        speeds = step_speeds(args.workdir, args.variant, arms, args.speed_steps or 30)
        reference = speeds.get("full")
        lines += [
            "",
            f"Step speed measured back to back in one process, {args.speed_steps} steps of the same batches "
            "per arm after 3 untimed ones (the training runs above may have shared the machine):\n",
            "| arm | target tokens/s | vs full |",
            "|---|---|---|",
            *(
                f"| {ARMS[arm][0]} | {speed:,.0f} | {f'{speed / reference:.2f}×' if reference else 'n/a'} |"
                for arm, speed in speeds.items()
            ),
        ]
    title = "Sampled softmax against the full one at 10^5 items" + (
        " (step speed)" if args.speed_only else ""
    )
    write_section(args.section, title, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
