"""The retriever and the simulator with no reasons, logged reasons, predicted and true reasons.

One default world, four versions of its log (the same events; only `reason` differs):

- none:      every reason removed (a product without a reason menu);
- logged:    as generated: explicit dislikes state their reason, skips none (the default
             benchmark models, `WORKDIR/models/<variant>-s<seed>`, are reused);
- predicted: logged + every skip labelled by the reason model (`ntr reasons train` on the
             logged reasons, then `ntr reasons label`);
- true:      logged + every skip given the world's hidden cause (a perfect labeller).

For each version, `ntr_reasons` and `group_ntr` are trained on it (3 seeds) and measured with
`ntr evaluate` and the counterfactual simulator (model alone, 2,000 pairs, top 20). In the
`none` version the simulator's dislikes carry no reason either (the product has none to send).
The share of the true reasons' gain that predicted reasons recover is
(predicted - logged) / (true - logged), per measure.

    python -m benchmarks.predicted_reasons [--root /tmp/ntr-bench] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil

import numpy as np

from benchmarks.common import (
    MEASURES,
    NTR,
    cached_counterfactual,
    mean_se,
    model_ranker,
    model_tag,
    prepare,
    run,
    train_and_evaluate,
    write_section,
)

VERSIONS = ("none", "logged", "predicted", "true")
VARIANTS = ("ntr_reasons", "group_ntr")


def write_version(world: str, version: str, root: str) -> str:
    """The workdir of one log version (raw/events.jsonl written, data/ preprocessed)."""
    if version == "logged":
        return world
    workdir = os.path.join(root, f"reasons-{version}")
    raw = os.path.join(workdir, "raw")
    events = os.path.join(raw, "events.jsonl")
    if not os.path.exists(events):
        os.makedirs(raw, exist_ok=True)
        shutil.copy(os.path.join(world, "raw", "items.jsonl"), raw)
        if version == "predicted":
            model_dir, cache = os.path.join(root, "reason-label-model"), os.path.join(root, "reason-cache")
            if not os.path.exists(os.path.join(model_dir, "model.pt")):
                run(
                    [
                        NTR,
                        "reasons",
                        "train",
                        "--workdir",
                        world,
                        "--model-dir",
                        model_dir,
                        "--cache-dir",
                        cache,
                    ]
                )
            run([NTR, "reasons", "label", "--workdir", world, "--model-dir", model_dir,
                 "--output", events + ".part"])  # fmt: skip
        else:
            rewrite(os.path.join(world, "raw", "events.jsonl"), events + ".part", version)
        os.replace(events + ".part", events)  # a half-written log is never taken for a finished one
    if not os.path.exists(os.path.join(workdir, "data", "stats.json")):
        run([NTR, "preprocess", "--workdir", workdir])
    return workdir


def rewrite(source: str, target: str, version: str) -> None:
    """none: drop every reason; true: give every unexplained negative its hidden cause."""
    from ntr.pipelines.events import LabelConfig  # noqa: PLC0415
    from ntr.reasons.label import needs_reason  # noqa: PLC0415

    config = LabelConfig()
    with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as out:
        for line in src:
            event = json.loads(line)
            if version == "none":
                event["reason"] = None
            elif needs_reason(event, config) and event.get("true_reason"):
                event["reason"] = event["true_reason"]
            out.write(json.dumps(event, sort_keys=True) + "\n")


def label_accuracy(labelled: str) -> dict:
    """Accuracy of the filled-in reasons against the world's hidden causes, per negative kind."""
    hits, totals = {}, {}
    with open(labelled, encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            if event.get("reason_source") != "model" or not event.get("true_reason"):
                continue
            kind = "skips" if event["action"] == "view" else "explicit"
            totals[kind] = totals.get(kind, 0) + 1
            hits[kind] = hits.get(kind, 0) + (event["reason"] == event["true_reason"])
    return {kind: (hits[kind] / totals[kind], totals[kind]) for kind in totals}


class WithoutReasons:
    """A ranker whose product sends no reasons: every event's `reason` is dropped."""

    def __init__(self, ranker):
        self.ranker, self.model = ranker, ranker.model

    def rank(self, histories, k, seeds):
        return self.ranker.rank([[dict(e, reason=None) for e in h] for h in histories], k, seeds)


def ranker(workdir: str, tag: str, version: str):
    """The model alone; in the `none` version its product sends no reasons either."""
    model = model_ranker(workdir, tag)
    return WithoutReasons(model) if version == "none" else model


def measures(evaluation: dict, simulated: dict) -> dict[str, float]:
    out = {m: evaluation["metrics"][m]["mean"] for m in ("ndcg@10", "neghit@10")}
    for reason, share in MEASURES:
        out[f"{reason}:{share}"] = simulated["reasons"][reason][share]["value"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/ntr-bench", help="work directories go under here")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds")
    parser.add_argument("--pairs", type=int, default=2000, help="counterfactual pairs per model")
    args = parser.parse_args()
    from ntr.retrieval.data import read_histories  # noqa: PLC0415

    world = os.path.join(args.root, "world")
    prepare("world", world, "")
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[tuple[str, str], list[dict]] = {}
    for version in VERSIONS:
        workdir = write_version(world, version, args.root)
        histories = read_histories(os.path.join(workdir, "data"), "test")
        for variant in VARIANTS:
            for seed in seeds:
                evaluation = train_and_evaluate(workdir, variant, seed, [])
                tag = model_tag(variant, seed)
                make_ranker = functools.partial(ranker, workdir, tag, version)
                simulated = cached_counterfactual(workdir, tag, histories, args.pairs, make_ranker)
                results.setdefault((version, variant), []).append(measures(evaluation, simulated))
                print(version, variant, seed, results[version, variant][-1], flush=True)
    accuracy = label_accuracy(os.path.join(args.root, "reasons-predicted", "raw", "events.jsonl"))
    names = ["ndcg@10", "neghit@10"] + [f"{r}:{s}" for r, s in MEASURES]
    lines = [
        "Default world, four versions of one log (only `reason` differs): **none** (every reason removed), "
        "**logged** (explicit dislikes state theirs, skips none), **predicted** (logged + skips labelled by "
        "`ntr reasons label`), **true** (logged + skips given the world's hidden cause). "
        f"{len(seeds)} seeds per row, mean ± SE over seeds; NDCG/NegHit from `ntr evaluate` (test split); "
        f"responsiveness = relative change of the share in the top 20 after the event, counterfactual "
        f"simulator, model alone, {args.pairs:,} pairs. Labelled skips agree with the hidden cause for "
        + ", ".join(f"{100 * a:.1f}% of {n:,} {kind}" for kind, (a, n) in sorted(accuracy.items()))
        + ".\n",
        "| variant | reasons | NDCG@10 | NegHit@10 | creator dislike: same-creator | topic dislike: "
        "same-category | quality dislike: same item | skip: same item |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        for version in VERSIONS:
            runs = results[version, variant]
            cells = []
            for name in names:
                mean, se = mean_se([r[name] for r in runs])
                cells.append(
                    f"{mean:.4f} ± {se:.4f}" if "@" in name else f"{100 * mean:+.1f}% ± {100 * se:.1f}"
                )
            lines.append(f"| `{variant}` | {version} | " + " | ".join(cells) + " |")
        cells = []
        for name in names:
            (logged, se_l), (predicted, _), (true, se_t) = (
                mean_se([r[name] for r in results[v, variant]]) for v in VERSIONS[1:]
            )
            gain, noise = true - logged, 2 * np.hypot(se_l, se_t)
            # A ratio to a gain that the seeds cannot tell from zero would be noise over noise.
            cells.append(
                f"{100 * (predicted - logged) / gain:.0f}%" if abs(gain) > noise else "n/a (no clear gain)"
            )
        lines.append(
            f"| `{variant}` | recovered: (predicted − logged) / (true − logged), where the true gain "
            "exceeds 2 SE | " + " | ".join(cells) + " |"
        )
    write_section(
        "predicted_reasons",
        "Predicted vs true vs no reasons in the retriever and simulator",
        "\n".join(lines),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
