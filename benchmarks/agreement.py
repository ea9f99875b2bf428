"""Which offline metric agrees with the closed loop? One command, every setting scored both ways.

Each setting (variant x query anchor x history weight) is trained once on the default world,
which logs a random-exposure slice and every exposure's propensity, then scored by every offline
figure `ntr evaluate` reports (the logged test split, its random slice, the off-policy
estimates) and by the closed loop (the same users and draws for every setting). Per offline
metric the table gives Spearman's rank correlation across the settings with the closed loop's
watch time and with its negative dislike rate, with a 95% bootstrap interval over settings.

    python -m benchmarks.agreement [--workdir /tmp/ntr-bench-agreement] [--seed 0] [--users 1000]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from scipy.stats import spearmanr

from benchmarks.common import (
    DATASETS,
    DATASETS_DIR,
    NTR,
    loop_start,
    model_tag,
    prepare,
    run,
    train_and_evaluate,
    write_section,
)

# name -> (variant, --set overrides): variants x query anchor x history weight.
SETTINGS = {
    "positives_only/event": ("positives_only", ["model.query_anchor=event"]),
    "positives_only/engaged": ("positives_only", ["model.query_anchor=engaged"]),
    "neg_features_only/event": ("neg_features_only", ["model.query_anchor=event"]),
    "neg_features_only/engaged": ("neg_features_only", ["model.query_anchor=engaged"]),
    "ntr/event": ("ntr", ["model.query_anchor=event"]),
    "ntr/engaged": ("ntr", ["model.query_anchor=engaged"]),
    "ntr/event/history1": ("ntr", ["model.query_anchor=event", "model.history_weight=1.0"]),
    "ntr/engaged/history1": ("ntr", ["model.query_anchor=engaged", "model.history_weight=1.0"]),
    "ntr_history": ("ntr_history", []),
    "ntr_history/event": ("ntr_history", ["model.query_anchor=event"]),
    "ntr_fitted": ("ntr_fitted", []),
}
# Fewer settings than this give rank correlations of little meaning; the table is still written.
MIN_SETTINGS_FOR_RHO = 4
# Offline metric -> (how to read it from an evaluation report, sign: +1 higher is better).
OFFLINE = {
    "logged NDCG@10": (lambda r: r["metrics"]["ndcg@10"]["mean"], 1),
    "logged NegHit@10": (lambda r: r["metrics"]["neghit@10"]["mean"], -1),
    "logged AUC (positive vs dislike)": (lambda r: r["metrics"]["auc"]["mean"], 1),
    "random slice AUC": (lambda r: r["random_slice"]["auc"]["mean"], 1),
    "random slice NDCG@10": (lambda r: r["random_slice"]["ndcg@10"]["mean"], 1),
    **{
        f"{estimator.upper()} {reward}": (
            lambda r, e=estimator, w=reward: r["off_policy"][w][e]["mean"],
            -1 if reward != "watch_seconds" else 1,
        )
        for reward in ("watch_seconds", "dislike_rate", "skip_rate")
        for estimator in ("ipw", "snipw", "dr")
    },
}


def suffix(name: str) -> str:
    """Model folder suffix of a setting."""
    return "agree-" + name.replace("/", "-")


def closed_loop(
    workdir: str, name: str, variant: str, seed: int, users: int, steps: int, served: bool = False
) -> dict:
    """The closed loop of one setting's model alone, or with `served` behind the serving
    Recommender's filters (cached in reports/)."""
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.simulation import closed_loop as loop  # noqa: PLC0415
    from ntr.simulation.rankers import ModelRanker, RecommenderRanker  # noqa: PLC0415

    tag = model_tag(variant, seed, suffix(name))
    how = "-served" if served else ""
    path = os.path.join(workdir, "reports", f"closed-loop-{tag}-u{users}-t{steps}{how}.json")
    if not os.path.exists(path):
        config, world, begin = loop_start(workdir, users, steps)
        model = ExportedModel(os.path.join(workdir, "models", tag))
        ranker = (
            RecommenderRanker.with_filters(model) if served else ModelRanker(model, exclude_consumed=True)
        )
        story = loop.story(world, ranker, begin, config)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({k: story[k] for k in ("watch_seconds", "dislike_rate", "skip_rate")}, handle)
        print("closed loop", name, "done", flush=True)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def spearman_with_interval(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, resamples: int = 2000):
    """Spearman's rho of x and y, and the 2.5 / 97.5 percentiles of rho over settings resampled
    with replacement (resamples where either side is constant are skipped)."""
    rho = float(spearmanr(x, y).statistic)
    draws = []
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        if np.ptp(x[pick]) > 0 and np.ptp(y[pick]) > 0:
            draws.append(spearmanr(x[pick], y[pick]).statistic)
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (float("nan"), float("nan"))
    return rho, float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/ntr-bench-agreement", help="default-world workdir")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every setting")
    parser.add_argument("--users", type=int, default=1000, help="closed-loop users")
    parser.add_argument("--steps", type=int, default=30, help="closed-loop steps")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of settings")
    parser.add_argument("--section", default="agreement", help="BENCHMARKS.md section to write")
    parser.add_argument("--scale", default="default", help="world scale (`tiny` for a quick check)")
    parser.add_argument(
        "--world",
        default="world",
        choices=[name for name in DATASETS if name.startswith("world")],
        help="which synthetic world (benchmarks.common.DATASETS), e.g. world_mix: another logging policy",
    )
    parser.add_argument(
        "--served", action="store_true", help="closed loop behind the serving filters, not the model alone"
    )
    args = parser.parse_args()
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    if args.scale != "default" and not os.path.exists(os.path.join(args.workdir, "raw", "world.json")):
        run([NTR, "generate", "--scale", args.scale, "--workdir", args.workdir])
    prepare(args.world, args.workdir, os.path.abspath(DATASETS_DIR))
    reports, loops = {}, {}
    for name in names:
        variant, overrides = SETTINGS[name]
        reports[name] = train_and_evaluate(args.workdir, variant, args.seed, overrides, suffix(name))
        loops[name] = closed_loop(args.workdir, name, variant, args.seed, args.users, args.steps, args.served)
        print(name, "done", flush=True)

    watch = np.array([loops[n]["watch_seconds"]["mean"] for n in names])
    dislike = np.array([loops[n]["dislike_rate"]["mean"] for n in names])
    lines = [
        ("Default world" if args.world == "world" else f"World `{args.world}`")
        + f" (3% random exposures, logged propensities), seed {args.seed}; closed loop: "
        f"{args.users} users, {args.steps} steps, "
        + ("behind the serving Recommender's filters" if args.served else "the model alone")
        + ", the same users and draws for every "
        "setting. Offline figures from `ntr evaluate` on the test split.\n",
        "| setting | logged NDCG@10 | random-slice NDCG@10 | random-slice AUC | SNIPS watch s | "
        "SNIPS dislike rate | closed-loop watch s/step | closed-loop dislike rate | closed-loop skip rate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        r = reports[n]
        snips = r["off_policy"]
        cells = [
            f"{r['metrics']['ndcg@10']['mean']:.4f}",
            _fmt_se(r["random_slice"]["ndcg@10"]),
            _fmt(r["random_slice"]["auc"]["mean"]),
            _fmt(snips["watch_seconds"]["snipw"]["mean"] if snips["n"] else None, 2),
            _fmt(snips["dislike_rate"]["snipw"]["mean"] if snips["n"] else None),
            f"{loops[n]['watch_seconds']['mean']:.2f}",
            f"{loops[n]['dislike_rate']['mean']:.4f}",
            f"{loops[n]['skip_rate']['mean']:.3f}",
        ]
        lines.append(f"| `{n}` | " + " | ".join(cells) + " |")
    if len(names) < MIN_SETTINGS_FOR_RHO:
        lines.append(
            f"\n{len(names)} settings: too few for rank correlations (at least {MIN_SETTINGS_FOR_RHO})."
        )
    else:
        rng = np.random.default_rng(args.seed)
        between, low, high = spearman_with_interval(watch, -dislike, rng)
        lines += [
            "",
            f"The closed loop's own outcomes: Spearman's rho of watch time with -dislike rate {between:+.2f} "
            f"[{low:+.2f}, {high:+.2f}]. Rank correlations are correlations of rank vectors, so a metric with "
            f"rho >= m with both needs rho(watch, -dislike) >= 2m^2 - 1: here no metric can reach more than "
            f"{ceiling(between):.2f} with both.",
            "",
            f"Spearman's rho across the {len(names)} settings (offline metric signed so that higher is "
            "better), [95% bootstrap interval over settings]:\n",
            "| offline metric | with closed-loop watch time | with closed-loop -dislike rate |",
            "|---|---|---|",
        ]
        for metric, (read, sign) in OFFLINE.items():
            try:
                values = np.array([sign * read(reports[n]) for n in names], np.float64)
            except (KeyError, TypeError):  # the log has no such reading (no random slice / propensity)
                lines.append(f"| {metric} | n/a | n/a |")
                continue
            cells = []
            for target in (watch, -dislike):
                if not (np.ptp(values) > 0 and np.ptp(target) > 0):  # nan included
                    cells.append("n/a (no spread)")
                    continue
                rho, low, high = spearman_with_interval(values, target, rng)
                cells.append(f"{rho:+.2f} [{low:+.2f}, {high:+.2f}]")
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    body = "\n".join(lines)
    print(body)
    write_section(args.section, "Agreement of offline metrics with the closed loop", body)


def ceiling(rho_between: float) -> float:
    """The largest m such that some ranking can have rank correlation m with both of two
    rankings whose own rank correlation is `rho_between`: correlation matrices are positive
    semi-definite, so rho_xy >= 2 m^2 - 1 when rho_ax = rho_ay = m, i.e. m <= sqrt((1 + rho_xy) / 2)."""
    return float(np.sqrt((1.0 + rho_between) / 2.0))


def _fmt_se(reading: dict) -> str:
    """mean ± se of a {"mean", "se", "n"} reading; n/a where the log gave none (mean None)."""
    return "n/a" if reading["mean"] is None else f"{reading['mean']:.4f} ± {reading['se']:.4f}"


def _fmt(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
