"""Lesson, reaction and fit in one table: does a model react to a dislike as strongly as the log
says users do, and at what cost in ranking quality?

Per log, on the test split (held-out windows of every user), for each variant and seed:

- quality: NDCG@10 and NegHit@10 (`ntr evaluate`), AUC of positives over dislikes, and the
  **after-dislike slice**: the same metrics on targets that come within 20 events after a
  dislike of the target's own creator or category, and on all other targets;
- the **lesson** (`simulation.lessons.lesson_ratios`): how much less later exposures to a
  disliked item / creator / category are positive than the same users' other exposures;
- the **reaction**, model alone: for counterfactual pairs (branch A watches X, branch B also
  dislikes it with a reason, or none), the change of the model's softmax mass on X's creator,
  its category, the rest of its category (same category, other creators) and X itself, and
  the change of the same shares of the top 20.

    python -m benchmarks.reaction --root /tmp/ntr-bench --datasets world,ml100k --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from benchmarks.common import DATASETS_DIR, mean_se, model_tag, prepare, train_and_evaluate, write_section

GROUPS = ("item", "creator", "category", "rest_of_category", "other")
# dataset -> counterfactual branches (dislike reasons; "none" = no stated reason)
BRANCHES = {
    "world": ("creator", "topic", "quality"),
    "world_mix": ("creator", "topic", "quality"),
    "world_kuairand": ("creator", "topic", "quality"),
    "world_xl": ("creator", "topic", "quality"),
    "ml100k": ("none", "creator", "topic"),
    "kuairand_pure": ("none", "creator", "topic"),
    "kuairand": (),
}
TITLES = {
    "world": "default world",
    "world_mix": "world, `--policy mix`",
    "world_kuairand": "world on the KuaiRand-Pure catalogue",
    "world_xl": "world at 10^5 items (`--scale xl`, sampled softmax)",
    "ml100k": "ml-100k + directors",
    "kuairand_pure": "KuaiRand-Pure",
    "kuairand": "KuaiRand-27K like/hate",
}


def group_masks(similarity, x: np.ndarray) -> dict[str, np.ndarray]:
    """name -> [n, num_items] bool: the items of each group of X [n]."""
    rows = np.arange(len(similarity.creator))
    creator = (similarity.creator[None, :] == similarity.creator[x][:, None]) & similarity.has_creator[x][
        :, None
    ]
    category = (similarity.categories[x].astype(np.float32) @ similarity.categories.T.astype(np.float32)) > 0
    return {
        "item": rows[None, :] == x[:, None],
        "creator": creator,
        "category": category,
        "rest_of_category": category & ~creator,
        "other": ~creator & ~category,
    }


def reaction(model, histories: list, branches: tuple[str, ...], pairs: int, seed: int = 0) -> dict:
    """branch -> group -> {"mass": responsiveness, "top20": responsiveness} for `model`
    (an ExportedModel) alone; see the module doc."""
    from ntr.simulation.counterfactual import (  # noqa: PLC0415
        CounterfactualConfig,
        Similarity,
        branch_histories,
        responsiveness,
        sample_pairs,
    )

    config = CounterfactualConfig(num_pairs=pairs, k=20, seed=seed)
    sampled = sample_pairs(histories, model.item_index, config, max(0, model.max_len - 2))
    similarity = Similarity(model.items, model.embeddings, config.neighbours)
    x = np.array([p.item_row for p in sampled])
    values: dict = {}
    for branch in (None, *branches):
        mass, share = {g: [] for g in GROUPS}, {g: [] for g in GROUPS}
        for start in range(0, len(sampled), 200):
            chunk, rows = sampled[start : start + 200], x[start : start + 200]
            batch = [
                branch_histories(
                    p, model.item_ids[p.item_row], model.items[p.item_row].get("duration_ms"), branch
                )
                for p in chunk
            ]
            logits = model.encode([model.known(h)[0] for h in batch]) @ model.embeddings.T
            logits -= logits.max(1, keepdims=True)
            probability = np.exp(logits)
            probability /= probability.sum(1, keepdims=True)
            top = np.argsort(-logits, axis=1)[:, : config.k]
            for name, mask in group_masks(similarity, rows).items():
                mass[name].append((probability * mask).sum(1))
                share[name].append(np.take_along_axis(mask, top, 1).mean(1))
        values[branch] = {g: (np.concatenate(mass[g]), np.concatenate(share[g])) for g in GROUPS}
    rng = np.random.default_rng(seed + 1)
    return {
        branch: {
            g: {
                "mass": responsiveness(values[None][g][0], values[branch][g][0], rng, 1000),
                "top20": responsiveness(values[None][g][1], values[branch][g][1], rng, 1000),
            }
            for g in GROUPS
        }
        for branch in branches
    }


def slice_metrics(workdir: str, tag: str) -> dict:
    """NDCG@10 / NegHit@10 on the after-dislike slice of the test split and on the rest."""
    from ntr.pipelines.events import Label  # noqa: PLC0415
    from ntr.retrieval import metrics  # noqa: PLC0415
    from ntr.retrieval.evaluate import rank_targets  # noqa: PLC0415
    from ntr.retrieval.items import load_item_table  # noqa: PLC0415
    from ntr.retrieval.train import load_trained  # noqa: PLC0415

    data_dir = os.path.join(workdir, "data")
    table = load_item_table(data_dir)
    ranked = rank_targets(
        load_trained(os.path.join(workdir, "models", tag), data_dir), data_dir, "test", k_max=10
    )
    inside = metrics.after_dislike(
        ranked.row_items,
        ranked.row_labels,
        ranked.row,
        ranked.position,
        ranked.item,
        table.item_creator,
        table.item_categories,
        int(Label.EXPLICIT_NEGATIVE),
    )
    positive, explicit = ranked.label == int(Label.POSITIVE), ranked.label == int(Label.EXPLICIT_NEGATIVE)
    out = {}
    for name, where in (("slice", inside), ("rest", ~inside)):
        out[name] = {
            "ndcg@10": metrics.mean_se(metrics.ndcg_at_k(ranked.rank[positive & where], 10)),
            "neghit@10": metrics.mean_se(metrics.hit_at_k(ranked.rank[explicit & where], 10)),
        }
    return out


def measure(workdir: str, variant: str, seed: int, pairs: int, branches: tuple[str, ...]) -> dict:
    """Quality, slice and reaction of one trained model, cached in reports/reaction-<tag>.json."""
    tag = model_tag(variant, seed)
    cache = os.path.join(workdir, "reports", f"reaction-{tag}.json")
    if os.path.exists(cache):
        with open(cache, encoding="utf-8") as handle:
            return json.load(handle)
    report = train_and_evaluate(workdir, variant, seed, [])
    from ntr.retrieval.data import read_histories  # noqa: PLC0415
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415

    model = ExportedModel(os.path.join(workdir, "models", tag))
    out = {
        "metrics": {k: report["metrics"][k] for k in ("ndcg@10", "neghit@10", "auc")},
        "slice": slice_metrics(workdir, tag),
        "reaction": reaction(model, read_histories(os.path.join(workdir, "data"), "test"), branches, pairs)
        if branches
        else {},
        "fitted": model.metadata.get("reaction"),
    }
    with open(cache, "w", encoding="utf-8") as handle:
        json.dump(out, handle)
    return out


def lesson(workdir: str) -> dict:
    """Per dislike granularity (item, creator, category) the lesson after such dislikes, and
    after every dislike ("all"), on the test windows."""
    from ntr.pipelines.events import Granularity  # noqa: PLC0415
    from ntr.retrieval.data import load_items, read_histories  # noqa: PLC0415
    from ntr.simulation.lessons import lesson_ratios  # noqa: PLC0415

    data_dir = os.path.join(workdir, "data")
    histories, items = read_histories(data_dir, "test"), load_items(data_dir)
    out = {"all": lesson_ratios(histories, items, np.random.default_rng(0))}
    for granularity in Granularity:
        out[granularity.value] = lesson_ratios(
            histories, items, np.random.default_rng(0), granularity=granularity
        )
    return out


# branch -> (dislike granularity whose lesson applies, group kinds it speaks for)
BRANCH_LESSON = {
    "creator": ("creator", ("creator",)),
    "topic": ("category", ("category",)),
    "quality": ("item", ("item", "creator", "category")),
    "none": ("item", ("item", "creator", "category")),
}


def _implied(results: list[dict], lessons: dict, branch: str) -> str:
    """The fitted strengths of `branch`'s kind in the lesson's units, mean over seeds: the change
    of the positive rate the fitted engagement model predicts for an exposure of the group,
    sigmoid(logit(p) - a b) / p - 1, at p = the positive rate of other exposures."""
    granularity, kinds = BRANCH_LESSON[branch]
    kind = ("item", "creator", "category").index(granularity)
    p = lessons["all"]["others"]["positive_rate"]
    if not p or not all(r.get("fitted") for r in results):
        return "n/a"
    logit = np.log(p / (1.0 - p))
    cells = []
    for name in ("item", "creator", "category"):
        if name not in kinds:
            continue
        # The item itself loses all three parts' drops; a creator's other items the creator and
        # category parts; the rest of a category only the category part.
        parts = {"item": (0, 1, 2), "creator": (1, 2), "category": (2,)}[name]
        drops = [
            r["fitted"]["temperature"] * sum(r["fitted"]["strengths"][kind][q] for q in parts)
            for r in results
        ]
        cells.append(f"{name} {100 * (1.0 / (1.0 + np.exp(-(logit - np.mean(drops)))) / p - 1.0):+.0f}%")
    return ", ".join(cells)


def _lesson_cell(lessons: dict, branch: str) -> str:
    granularity, kinds = BRANCH_LESSON[branch]
    found = lessons[granularity]
    cells = []
    for kind in kinds:
        r = found[kind]
        if r["value"] is None:
            cells.append(f"{kind} n/a")
            continue
        ci = f" [{100 * r['ci95'][0]:+.0f}, {100 * r['ci95'][1]:+.0f}]" if r["ci95"] else ""
        cells.append(f"{kind} {100 * r['value']:+.0f}%{ci} ({r['exposures']:,})")
    return f"{found['dislikes']:,} dislikes: " + ", ".join(cells)


def _pm(values: list[float | None], percent: bool = False, digits: int = 4) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    mean, se = mean_se(values)
    if percent:
        return f"{100 * mean:+.1f}% ± {100 * se:.1f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def _ratio(values: list, base: list) -> str:
    values, base = [v for v in values if v is not None], [v for v in base if v is not None]
    if not values or not base or not np.mean(base):
        return "n/a"
    return f"x{np.mean(values) / np.mean(base):.3f}"


def tables(name: str, variants: list[str], results: dict, lessons: dict) -> str:
    """The quality table and the reaction table of one log (markdown)."""
    base = variants[0]

    def column(variant, get):
        return [get(r) for r in results[variant]]

    lines = [
        f"**{TITLES[name]}** (test split; mean ± SE over seeds; ratios to `{base}`)",
        "",
        "| variant | NDCG@10 | ratio | NegHit@10 | ratio | AUC | slice NDCG@10 (n) | slice NegHit@10 (n) | rest NDCG@10 | rest NegHit@10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        ndcg = column(v, lambda r: r["metrics"]["ndcg@10"]["mean"])
        neghit = column(v, lambda r: r["metrics"]["neghit@10"]["mean"])
        auc = column(v, lambda r: r["metrics"]["auc"]["mean"])
        cells = []
        for part in ("slice", "rest"):
            for metric in ("ndcg@10", "neghit@10"):
                got = column(v, lambda r, p=part, m=metric: r["slice"][p][m]["mean"])
                count = results[v][0]["slice"][part][metric]["n"]
                cells.append(_pm(got) + (f" ({count:,})" if part == "slice" else ""))
        lines.append(
            f"| `{v}` | {_pm(ndcg)} | {_ratio(ndcg, column(base, lambda r: r['metrics']['ndcg@10']['mean']))} "
            f"| {_pm(neghit)} | {_ratio(neghit, column(base, lambda r: r['metrics']['neghit@10']['mean']))} "
            f"| {_pm(auc)} | " + " | ".join(cells) + " |"
        )
    branches = BRANCHES[name]
    if not branches:
        return "\n".join(lines)
    told = " · ".join(
        f"{kind} {100 * lessons['all'][kind]['value']:+.1f}%"
        + (
            f" [{100 * lessons['all'][kind]['ci95'][0]:+.0f}, {100 * lessons['all'][kind]['ci95'][1]:+.0f}]"
            if lessons["all"][kind]["ci95"]
            else ""
        )
        + f" ({lessons['all'][kind]['exposures']:,} exposures)"
        if lessons["all"][kind]["value"] is not None
        else f"{kind} n/a"
        for kind in ("item", "creator", "category")
    )
    lines += [
        "",
        f"Lesson, every dislike (positive rate of later exposures to a disliked group vs the same users' "
        f"other exposures, 95% bootstrap interval over windows): {told}.",
        "",
        "Reaction, model alone: change of the softmax mass / of the top-20 share of each group of X after the "
        "dislike (reason in the first column; `none` = no stated reason), mean ± SE over seeds. "
        '"Rest of category vs other": the change of the rest of the category\'s mass against that of '
        "unrelated items, (1 + rest) / (1 + other) - 1, i.e. what went with the disliked group beyond the "
        "softmax's renormalisation (0 = nothing). Last column: "
        "the lesson after dislikes of that reason's granularity (the change of the positive rate of later "
        "exposures to the group); before it, the fitted strengths in the same units (the positive-rate change "
        "the fitted engagement model `sigmoid(a score + c)` predicts for an exposure of the group after such "
        "a dislike; `retrieval/reaction.py`).",
        "",
        "| variant | dislike | X itself: mass / top 20 | creator | category | rest of category | other | rest of category vs other (mass) | fitted, in the lesson's units | lesson |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in variants[1:]:
        for branch in branches:
            cells = []
            for g in GROUPS:
                mass = column(v, lambda r, g=g, b=branch: r["reaction"][b][g]["mass"]["value"])
                top = column(v, lambda r, g=g, b=branch: r["reaction"][b][g]["top20"]["value"])
                cells.append(f"{_pm(mass, True)} / {_pm(top, True)}")
            # Granularity beyond renormalisation: a group-specific drop raises every other
            # item's mass by one factor, so the rest of the category against "other".
            rest = column(v, lambda r, b=branch: r["reaction"][b]["rest_of_category"]["mass"]["value"])
            other = column(v, lambda r, b=branch: r["reaction"][b]["other"]["mass"]["value"])
            pairs = [(x, y) for x, y in zip(rest, other, strict=True) if x is not None and y is not None]
            cells.append(_pm([(1 + x) / (1 + y) - 1 for x, y in pairs], True) if pairs else "n/a")
            implied = _implied(results[v], lessons, branch)
            lesson_cell = _lesson_cell(lessons, branch)
            lines.append(f"| `{v}` | {branch} | " + " | ".join(cells) + f" | {implied} | {lesson_cell} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/ntr-bench", help="work directories go under here")
    parser.add_argument(
        "--datasets",
        default=",".join(n for n in BRANCHES if n != "world_xl"),
        help=f"comma-separated: {', '.join(BRANCHES)} (world_xl, 10^5 items, only when named)",
    )
    parser.add_argument("--datasets-dir", default=DATASETS_DIR, help="public datasets (env NTR_DATASETS)")
    parser.add_argument(
        "--variants", default="positives_only,ntr_history,ntr_fitted", help="first = reference"
    )
    parser.add_argument("--seeds", default="0,1,2", help="training seeds")
    parser.add_argument("--pairs", type=int, default=1000, help="counterfactual pairs per model")
    parser.add_argument("--section", default="reaction", help="BENCHMARKS.md section to write")
    args = parser.parse_args()
    variants, seeds = args.variants.split(","), [int(s) for s in args.seeds.split(",")]
    parts = []
    for name in args.datasets.split(","):
        if name not in BRANCHES:
            raise SystemExit(f"unknown dataset {name!r}; choose from {', '.join(BRANCHES)}")
        workdir = os.path.join(args.root, name)
        prepare(name, workdir, os.path.abspath(args.datasets_dir))
        results = {v: [measure(workdir, v, s, args.pairs, BRANCHES[name]) for s in seeds] for v in variants}
        parts.append(tables(name, variants, results, lesson(workdir) if BRANCHES[name] else {}))
        print(parts[-1], flush=True)
    body = (
        f"Seeds {args.seeds}; {args.pairs:,} counterfactual pairs per model (test split, top 20, model alone). "
        "Each model: `ntr train --variant V --seed S` with the default config, then `ntr evaluate`. "
        "The slice: test targets within 20 events after a dislike of their own creator or category.\n\n"
        + "\n\n".join(parts)
    )
    write_section(args.section, "Lesson, reaction and fit per log", body)


if __name__ == "__main__":
    main()
