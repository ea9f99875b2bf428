"""`ntr evaluate`: full-corpus metrics of a trained variant -> WORKDIR/reports/evaluation-<variant>.json."""

from __future__ import annotations

import argparse
import json
import os

from ntr.retrieval.config import VARIANTS

HELP = (
    "Rank the whole catalogue for every test target (history filtered) and report Recall/NDCG, "
    "NegHit, delta HR, FHR and AUC with standard errors; where the log allows, metrics on its "
    "random-exposure slice and off-policy estimates (IPS/SNIPS/DR) of the model's top K."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", default="ntr", choices=sorted(VARIANTS), help="which trained variant")
    parser.add_argument("--split", default="test", choices=("valid", "test"), help="split to evaluate")
    parser.add_argument("--k", type=int, action="append", help="cut-off K (repeatable; default 10)")
    parser.add_argument("--fhr-days", type=float, default=7.0, help="FHR window after each target, days")
    parser.add_argument("--data-dir", help="preprocessed data (default WORKDIR/data)")
    parser.add_argument("--model-dir", help="trained model (default WORKDIR/models/<variant>)")
    parser.add_argument("--output", help="report path (default WORKDIR/reports/evaluation-<variant>.json)")
    parser.add_argument(
        "--max-windows",
        type=int,
        default=0,
        help="rank a fixed sample of about this many windows, chosen by user-id fingerprint "
        "(default 0: every window); the report records the share",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=200, help="bootstrap resamples of the off-policy intervals"
    )


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ntr.cli.progress import Progress  # noqa: PLC0415 (TF starts below)
    from ntr.retrieval.data import window_share  # noqa: PLC0415
    from ntr.retrieval.evaluate import rank_targets, summarize  # noqa: PLC0415
    from ntr.retrieval.offline import off_policy, random_slice  # noqa: PLC0415
    from ntr.retrieval.train import load_trained  # noqa: PLC0415

    ks = tuple(sorted(set(args.k or [10])))
    if min(ks) < 1:
        raise ValueError("--k must be >= 1.")
    data_dir = args.data_dir or os.path.join(args.workdir, "data")
    model_dir = args.model_dir or os.path.join(args.workdir, "models", args.variant)
    output = args.output or os.path.join(args.workdir, "reports", f"evaluation-{args.variant}.json")
    model = load_trained(model_dir, data_dir)
    share, rows = window_share(data_dir, args.split, args.max_windows)
    if args.bootstrap < 1:
        raise ValueError("--bootstrap must be >= 1.")
    ranked = rank_targets(
        model,
        data_dir,
        args.split,
        k_max=max(max(ks), 100),
        progress=Progress("ranking"),
        total_rows=round(rows * share),
        logging=True,
        share=share,
    )
    metrics = summarize(ranked, ks, args.fhr_days)
    # Reported only where the log carries random exposures / propensities (n > 0).
    unbiased = random_slice(ranked, ks[0])
    estimates = off_policy(ranked, ks[0], bootstrap=args.bootstrap)
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as handle:
        model_meta = json.load(handle)
    report = {
        "variant": args.variant,
        "split": args.split,
        "ks": list(ks),
        # A sample (share < 1) is reported as such: its figures carry the sample's error.
        "windows": {"in_split": rows, "share": share, "ranked": len(ranked.row_items)},
        "fhr_days": args.fhr_days,
        "metrics": metrics,
        "random_slice": unbiased,
        "off_policy": estimates,
        "model_dir": os.path.abspath(model_dir),
        "model_fingerprint": model_meta.get("export", {}).get("fingerprint"),
        "vocab_hash": model_meta["vocab_hash"],
        "config": model_meta["config"],
    }
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
    if share < 1.0:
        print(
            f"ranked a fixed sample: {len(ranked.row_items)} of {rows} {args.split} windows (--max-windows)"
        )
    print(format_metrics(metrics))
    print(format_offline(unbiased, estimates))
    print(f"wrote {output}")
    return 0


def format_metrics(metrics: dict) -> str:
    """One `name  mean ± se  (n)` line per metric."""
    lines = []
    for name, value in metrics.items():
        if value["mean"] is None:
            lines.append(f"  {name:<22} n/a (no targets)")
            continue
        se = "" if value["se"] is None else f" ± {value['se']:.4f}"
        lines.append(f"  {name:<22} {value['mean']:.4f}{se}  (n={value['n']})")
    return "\n".join(lines)


def format_offline(unbiased: dict, estimates: dict) -> str:
    """The random-slice metrics and off-policy estimates, or why there are none."""
    if unbiased["n"]:
        lines = [
            f"random-exposure slice ({unbiased['n']} targets):",
            format_metrics({name: value for name, value in unbiased.items() if name != "n"}),
        ]
    else:
        lines = ["random-exposure slice: none in this split (the log has no is_random exposures)"]
    if not estimates["n"]:
        lines.append("off-policy estimates: none (the log has no propensities)")
        return "\n".join(lines)
    lines.append(
        f"off-policy estimates of the model's top {estimates['k']} ({estimates['n']} exposures with a "
        f"propensity, effective n {estimates['effective_n']:.0f}); logged policy, then IPS / SNIPS / DR "
        "[95% CI]:"
    )
    for name, logged in estimates["logged"].items():
        cells = [
            f"{e}: {v['mean']:.4f} [{v['ci95'][0]:.4f}, {v['ci95'][1]:.4f}]"
            for e, v in estimates[name].items()
        ]
        lines.append(f"  {name:<16} logged {logged:.4f}  " + "  ".join(cells))
    return "\n".join(lines)
