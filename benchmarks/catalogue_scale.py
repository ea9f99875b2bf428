"""Every stage at 10^5 and 10^6 items on one machine: wall time, peak memory, disk, side by side.

For each named world scale (default `xl`: 10^5 items, ~10^6 events, the reference; and `xxl`:
10^6 items, ~3*10^6 events) it runs, in WORKDIR/<scale>, `ntr generate`, `ntr preprocess`,
`ntr train` of `ntr` (softmax `auto`: sampled above 50,000 items), `ntr evaluate` (test split,
full-corpus ranking over every item, of at most --test-windows windows: a fixed user sample above it,
as is each epoch's validation, --valid-windows), `ntr index --k 10 --target-recall 0.95` and the service
under load (`benchmarks.serving_load`, 200 requests/s, its own section `serving_load_<scale>`).
Each stage runs in its own process; its peak is that process's largest resident set (`wait4`),
the server's is its VmHWM. Stages already done are kept (their records in
WORKDIR/<scale>/reports/stages.json); delete the folder to redo one.

    python -m benchmarks.catalogue_scale [--workdir /tmp/ntr-bench-scale] [--scales xl,xxl] [--epochs 2]
        [--valid-windows 1000] [--test-windows 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import NTR, run_measured, write_section

K = 10
STAGES = ("generate", "preprocess", "train", "evaluate", "index", "serve")


def stage_commands(
    workdir: str, scale: str, seed: int, epochs: int, windows: tuple[int, int]
) -> dict[str, list[str]]:
    serving = [sys.executable, "-m", "benchmarks.serving_load", "--workdir", workdir, "--section",
               f"serving_load_{scale}", "--negatives-rate", "0", "--no-auth-arm", "--json",
               os.path.join(workdir, "reports", "serving.json")]  # fmt: skip
    return {
        "generate": [NTR, "generate", "--scale", scale, "--seed", str(seed), "--workdir", workdir],
        "preprocess": [NTR, "preprocess", "--workdir", workdir],
        "train": [
            NTR,
            "train",
            "--workdir",
            workdir,
            "--variant",
            "ntr",
            "--seed",
            str(seed),
            "--epochs",
            str(epochs),
            "--no-progress",
            "--set",
            f"train.valid_windows={windows[0]}",
        ],  # fmt: skip
        "evaluate": [
            NTR,
            "evaluate",
            "--workdir",
            workdir,
            "--variant",
            "ntr",
            "--max-windows",
            str(windows[1]),
        ],
        "index": [
            NTR,
            "index",
            "--workdir",
            workdir,
            "--variant",
            "ntr",
            "--k",
            str(K),
            "--target-recall",
            "0.95",
            "--no-tf-serving",
        ],  # fmt: skip
        "serve": serving,
    }


def run_stages(workdir: str, scale: str, seed: int, epochs: int, windows: tuple[int, int]) -> dict[str, dict]:
    """Runs the stages not yet recorded; returns {stage: {"seconds", "peak_mib"}}."""
    path = os.path.join(workdir, "reports", "stages.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    done = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            done = json.load(handle)
    for stage, cmd in stage_commands(workdir, scale, seed, epochs, windows).items():
        if stage in done:
            continue
        seconds, peak = run_measured(cmd)
        done[stage] = {"seconds": round(seconds, 1), "peak_mib": round(peak, 1)}
        with open(path, "w", encoding="utf-8") as handle:  # after every stage: a rerun resumes
            json.dump(done, handle, indent=2)
    return done


def disk_mib(path: str) -> float:
    out = subprocess.run(["du", "-sk", path], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0]) / 1024


def figures(workdir: str) -> dict:
    """What each stage produced, read from its own records."""

    def load(*parts):
        with open(os.path.join(workdir, *parts), encoding="utf-8") as handle:
            return json.load(handle)

    world, stats = load("raw", "world.json")["summary"], load("data", "stats.json")
    metrics = load("models", "ntr", "metrics.json")
    config = load("models", "ntr", "config.json")["config"]
    return {
        "items": world["items"],
        "users": world["users"],
        "events": stats["rows_in"],
        "train windows": stats["splits"]["train"],
        "metrics": metrics,
        "model": config["model"],
        "optimizer": config["train"].get("optimizer", "adam"),
        "test": load("reports", "evaluation-ntr.json")["metrics"],
        "test windows": load("reports", "evaluation-ntr.json")["windows"],
        "index": load("index", "manifest.json"),
        "serving": load("reports", "serving.json"),
        "disk": {
            name: disk_mib(os.path.join(workdir, *where))
            for name, where in (
                ("raw logs", ("raw",)),
                ("training data", ("data",)),
                ("model", ("models", "ntr")),
                ("index", ("index",)),
            )
        },
    }


def ratio(big: float, small: float) -> str:
    return f"{big / small:.1f}×" if small else "n/a"


def table(scales: list[str], stages: dict, facts: dict) -> list[str]:
    ref, several = scales[0], len(scales) > 1
    head = " | ".join(scales) + (f" | {scales[-1]} / {ref}" if several else "")
    lines = [f"| what | {head} |", "|---|" + "---|" * (len(scales) + several)]

    def row(what, values, numbers=None):
        growth = ""
        if several:
            growth = f" {ratio(numbers[-1], numbers[0])} |" if numbers else " |"
        lines.append(f"| {what} | " + " | ".join(values) + f" |{growth}")

    for name in ("items", "users", "events", "train windows"):
        row(name, [f"{facts[s][name]:,}" for s in scales], [facts[s][name] for s in scales])
    for stage in STAGES:
        secs = [stages[s][stage]["seconds"] for s in scales]
        row(f"{stage}: wall time", [f"{v:,.0f} s" for v in secs], secs)
        peaks = [stages[s][stage]["peak_mib"] for s in scales]
        row(f"{stage}: peak memory", [f"{v:,.0f} MiB" for v in peaks], peaks)
    server = [facts[s]["serving"]["server_peak_mib"] or 0 for s in scales]
    row("serve: server's own peak memory", [f"{v:,.0f} MiB" for v in server], server)
    for name in facts[ref]["disk"]:
        sizes = [facts[s]["disk"][name] for s in scales]
        row(f"disk: {name}", [f"{v:,.0f} MiB" for v in sizes], sizes)
    rates = [facts[s]["metrics"]["targets_per_second_this_run"] for s in scales]
    row("train: target tokens/s", [f"{v:,.0f}" for v in rates], rates)
    row(
        "train: epochs run (best)",
        [f"{facts[s]['metrics']['epochs_run']} ({facts[s]['metrics']['best_epoch']})" for s in scales],
    )
    row(
        "validation: share of the valid windows ranked per epoch",
        [f"{facts[s]['metrics'].get('valid_share', 1.0):.1%}" for s in scales],
    )
    row(
        "evaluate: test windows ranked (of the split)",
        [
            f"{facts[s]['test windows']['ranked']:,} of {facts[s]['test windows']['in_split']:,}"
            for s in scales
        ],
    )
    row(
        "test NDCG@10 (full corpus, ± SE)",
        [
            f"{facts[s]['test']['ndcg@10']['mean']:.4f} ± {facts[s]['test']['ndcg@10']['se']:.4f}"
            for s in scales
        ],
    )
    row(
        f"index: kind, recall@{K} vs brute force",
        [
            f"`{facts[s]['index']['config']['kind']}`, {facts[s]['index']['recall']['measured']:.4f}"
            for s in scales
        ],
    )
    p99 = [facts[s]["serving"]["recommend_p99_ms"] for s in scales]
    row(
        "serve: recommend p50 / p99 at 200 req/s",
        [
            f"{facts[s]['serving']['recommend_p50_ms']:.2f} / {v:.2f} ms"
            for s, v in zip(scales, p99, strict=True)
        ],
        p99,
    )
    row(
        "serve: errors", [f"{facts[s]['serving']['errors']} of {facts[s]['serving']['sent']}" for s in scales]
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", default="/tmp/ntr-bench-scale", help="one folder per scale is made in it"
    )
    parser.add_argument("--scales", default="xl,xxl", help="world scales, the first is the reference")
    parser.add_argument("--seed", type=int, default=0, help="world and training seed")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs at most")
    parser.add_argument(
        "--valid-windows",
        type=int,
        default=1_000,
        help="valid windows ranked per epoch (train.valid_windows)",
    )
    parser.add_argument(
        "--test-windows", type=int, default=2_000, help="test windows ranked (ntr evaluate --max-windows)"
    )
    parser.add_argument("--section", default="catalogue_scale", help="BENCHMARKS.md section to write")
    args = parser.parse_args()
    scales = args.scales.split(",")
    stages, facts = {}, {}
    for scale in scales:
        workdir = os.path.join(args.workdir, scale)
        stages[scale] = run_stages(
            workdir, scale, args.seed, args.epochs, (args.valid_windows, args.test_windows)
        )
        facts[scale] = figures(workdir)
    ref = facts[scales[0]]
    model = ref["model"]
    body = "\n".join(
        [
            f"Worlds `--scale {'`, `'.join(scales)}`, seed {args.seed}, each stage a process of its own on this "
            f"machine, one after another; variant `ntr`, softmax `{model['softmax']}` (sampled above "
            f"{model['full_softmax_max_items']:,} items: in-batch + {model['num_uniform_candidates']:,} uniform, "
            f"logQ `{model['sampled_log_q']}`, optimizer `{ref['optimizer']}`), at most {args.epochs} epochs. Peak "
            "memory is the stage process's largest resident set; the serve stage is the load client (with an "
            "in-process reference recommender), the server's own peak is the row after it. Validation and "
            f"evaluation rank a fixed user-fingerprint sample of at most {args.valid_windows:,} and "
            f"{args.test_windows:,} windows against the whole catalogue (`train.valid_windows`, `ntr evaluate "
            "--max-windows`): their cost is windows x items. Service latency "
            f"details: sections `serving_load_<scale>`. The last column is the ratio of the last scale to "
            f"the first.\n",
            *table(scales, stages, facts),
        ]
    )
    write_section(args.section, "Catalogue scale: every stage at 10^5 and 10^6 items", body)
    print(body)


if __name__ == "__main__":
    main()
