"""Helpers every benchmark shares: running ntr, trained models, counterfactuals, statistics, and
writing a section of BENCHMARKS.md (leaving the other sections as they are).

Benchmarks import from here, never from each other.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS_MD = os.path.join(ROOT, "BENCHMARKS.md")
NTR = os.path.join(os.path.dirname(sys.executable), "ntr")
ALL_VARIANTS = (
    "positives_only",
    "neg_features_only",
    "ntr",
    "ntr_reasons",
    "group_ntr",
    "ntr_history",
    "ntr_fitted",
)
REAL_VARIANTS = ("positives_only", "neg_features_only", "ntr", "ntr_history", "ntr_fitted")
# Reasons (and so ntr_reasons / group_ntr) exist only in the synthetic world; ntr_history on real
# logs works from the item (and, where the log has them, creator/category of reason-less dislikes:
# none here, so its history side is item-level).
DATASETS = {
    "world": {"variants": ALL_VARIANTS, "preprocess": [], "generate": []},
    # Worlds ntr_history was not tuned on: another logging policy, and real items.
    "world_mix": {"variants": ALL_VARIANTS, "preprocess": [], "generate": ["--policy", "mix"]},
    "world_kuairand": {
        "variants": ALL_VARIANTS,
        "preprocess": [],
        "generate": ["--catalogue", "{datasets}/kuairand_pure_meta"],
    },
    # The 10^5-item catalogue (sampled softmax under `auto`); named explicitly, never a default.
    "world_xl": {"variants": ALL_VARIANTS, "preprocess": [], "generate": ["--scale", "xl"]},
    "ml100k": {
        "variants": REAL_VARIANTS,
        "preprocess": [
            "--source",
            "ml100k",
            "--data",
            "{datasets}/ml-100k",
            "--creators",
            "{datasets}/ml-100k-directors",
        ],
    },
    "kuairand": {
        "variants": REAL_VARIANTS,
        "preprocess": ["--source", "kuairand", "--data", "{datasets}/kuairand27k_like_hate"],
    },
    "kuairand_pure": {
        "variants": REAL_VARIANTS,
        "preprocess": ["--source", "kuairand_pure", "--data", "{datasets}/kuairand_pure_log"],
    },
}
# Where the public datasets lie (README: Public datasets); never copied into the repository.
DATASETS_DIR = os.environ.get("NTR_DATASETS", os.path.join(ROOT, "..", "shared", "datasets"))
METRICS = ("ndcg@10", "recall@10", "neghit@10", "delta_hr@10", "auc")


def qps(index, queries: np.ndarray, batch: int, k: int, min_seconds: float = 3.0) -> float:
    """Queries per second of `index.search` at `k`, repeating the query set until min_seconds pass."""
    index.search(queries[:batch], k)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        for i in range(0, len(queries), batch):
            index.search(queries[i : i + batch], k)
            done += len(queries[i : i + batch])
    return done / (time.perf_counter() - start)


def train_batches(data_dir: str, config, count: int) -> list[dict]:
    """`count` shuffled train batches (seed 0) as `ntr train` feeds them, repeating the data."""
    from ntr.retrieval.data import sequence_dataset  # noqa: PLC0415 (TensorFlow on demand)

    dataset = sequence_dataset(
        data_dir, "train", config.train.batch_size, config.model.max_len, shuffle=True, seed=0
    )
    dataset = dataset.map(lambda b: {k: v for k, v in b.items() if k != "user_id"})
    return [b for _, b in zip(range(count), dataset.repeat(), strict=False)]


def tf_train_rate(config, table, batches: list[dict], warmup: int = 3) -> tuple[int, float]:
    """(targets, seconds) of ntr's training step (`retrieval.train.make_train_step`) over
    `batches` after `warmup` untimed steps, which include tracing."""
    from ntr.retrieval.model import NTRModel  # noqa: PLC0415
    from ntr.retrieval.train import make_train_step  # noqa: PLC0415
    from ntr.tfenv import tf  # noqa: PLC0415

    model = NTRModel(config, table)
    optimizer = tf.keras.optimizers.Adam(config.train.learning_rate)
    step = make_train_step(model, optimizer, tf.distribute.get_strategy())
    for b in batches[:warmup]:
        step(b)
    targets, start = 0, time.perf_counter()
    for b in batches[warmup:]:
        targets += int(step(b)[1])
    return targets, time.perf_counter() - start


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """Runs `cmd` to completion; returns (wall seconds, peak resident memory in MiB). The peak is
    the largest resident set of the process and of the children it waited for (Linux
    `wait4` rusage), so a stage that forks workers is counted by its largest one."""
    print("+", " ".join(cmd), flush=True)
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, cmd)
    return time.perf_counter() - start, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def process_peak_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a running process in MiB, or None where /proc has none."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def prepare(name: str, workdir: str, datasets_dir: str) -> None:
    if os.path.exists(os.path.join(workdir, "data", "stats.json")):
        return
    if "generate" in DATASETS[name]:
        generate = [a.format(datasets=datasets_dir) for a in DATASETS[name]["generate"]]
        run([NTR, "generate", "--workdir", workdir, *generate])
    args = [a.format(datasets=datasets_dir) for a in DATASETS[name]["preprocess"]]
    run([NTR, "preprocess", "--workdir", workdir, *args])


def model_tag(variant: str, seed: int, suffix: str = "") -> str:
    """models/<tag>: one folder per variant, seed and (for side runs with overrides) suffix."""
    return f"{variant}-s{seed}" + (f"-{suffix}" if suffix else "")


def train_and_evaluate(workdir: str, variant: str, seed: int, overrides: list[str], suffix: str = "") -> dict:
    tag = model_tag(variant, seed, suffix)
    report = os.path.join(workdir, "reports", f"bench-{tag}.json")
    if not os.path.exists(report):
        model_dir = os.path.join(workdir, "models", tag)
        sets = [x for item in overrides for x in ("--set", item)]
        started = time.perf_counter()
        # A finished export is reused (benchmarks resume); delete the folder to retrain.
        if not os.path.exists(os.path.join(model_dir, "saved_model")):
            run([NTR, "train", "--workdir", workdir, "--variant", variant, "--seed", str(seed), "--model-dir",
                 model_dir, "--fresh", "--no-progress", *sets])  # fmt: skip
        run(
            [
                NTR,
                "evaluate",
                "--workdir",
                workdir,
                "--variant",
                variant,
                "--model-dir",
                model_dir,
                "--output",
                report,
            ]
        )
        with open(report, encoding="utf-8") as handle:
            data = json.load(handle)
        data["seconds"] = round(time.perf_counter() - started, 1)
        with open(report, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
    with open(report, encoding="utf-8") as handle:
        return json.load(handle)


def mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else 0.0


def relative(value: float, base: float) -> str:
    """`+x.x%` change against `base`, or n/a when the base is 0 (e.g. no negative in any top 10)."""
    return f"{100 * (value / base - 1):+.1f}%" if base else "n/a (base 0)"


# (dislike reason, share it should suppress) reported per variant.
MEASURES = (("creator", "creator"), ("topic", "category"), ("quality", "item"), ("skip", "item"))


def model_ranker(workdir: str, tag: str, filters: bool = False):
    """The model at WORKDIR/models/<tag> alone, or behind the serving Recommender's filters."""
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.simulation.rankers import ModelRanker, RecommenderRanker  # noqa: PLC0415

    model = ExportedModel(os.path.join(workdir, "models", tag))
    return RecommenderRanker.with_filters(model) if filters else ModelRanker(model)


@functools.cache
def loop_start(workdir: str, num_users: int, steps: int):
    """(ClosedLoopConfig, World, logged start histories) of a workdir's closed loop, built once
    per process: every arm and seed of a benchmark runs on the same users and draws."""
    from ntr.simulation import closed_loop as loop  # noqa: PLC0415

    raw = os.path.join(workdir, "raw")
    config = loop.ClosedLoopConfig(num_users=num_users, steps=steps)
    world = loop.World.from_raw(raw)
    return config, world, loop.logged_histories(raw, loop.sample_users(world, config))


def cached_counterfactual(
    workdir: str, name: str, histories: list, pairs: int, make_ranker, reasons: tuple[str, ...] | None = None
) -> dict:
    """`run_counterfactual` (top 20) of `make_ranker()`, cached as reports/responsiveness-<name>.json.

    The ranker is built only when the cache is missing (it loads the model). `reasons`: the
    dislike branches (the counterfactual's default set when None).
    """
    from ntr.simulation.counterfactual import CounterfactualConfig, run_counterfactual  # noqa: PLC0415

    cache = os.path.join(workdir, "reports", f"responsiveness-{name}.json")
    if not os.path.exists(cache):
        started = time.perf_counter()
        config = CounterfactualConfig(num_pairs=pairs, k=20)
        if reasons is not None:
            config = CounterfactualConfig(num_pairs=pairs, k=20, reasons=tuple(reasons))
        result = run_counterfactual(make_ranker(), histories, config)
        result["seconds"] = time.perf_counter() - started
        with open(cache, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
    with open(cache, encoding="utf-8") as handle:
        return json.load(handle)


_HEADER = (
    "# Benchmarks\n\nEach section is written by the script it names; re-run it to refresh the section.\n"
)


def machine() -> str:
    """CPU model, cores and memory of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    if hasattr(os, "sysconf"):
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_section(name: str, title: str, body: str) -> None:
    """Replaces (or appends) the section `name` of BENCHMARKS.md with `body` and run details."""
    stamp = datetime.date.today().isoformat()
    # The script that runs, not the section name: one script may write several sections.
    script = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    command = " ".join(["python", "-m", f"benchmarks.{script}"] + sys.argv[1:])
    section = (
        f"<!-- BEGIN {name} -->\n## {title}\n\n"
        f"Command: `{command}`  \nMachine: {machine()}  \nDate: {stamp}, commit {commit()}\n\n"
        f"{body.strip()}\n<!-- END {name} -->\n"
    )
    text = open(BENCHMARKS_MD, encoding="utf-8").read() if os.path.exists(BENCHMARKS_MD) else _HEADER
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(BENCHMARKS_MD, "w", encoding="utf-8") as handle:
        handle.write(text)
