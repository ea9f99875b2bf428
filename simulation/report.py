"""The simulation report: plots (matplotlib PNG) and one self-contained HTML page.

`write_report(results, reports_dir)` writes simulation.json, responsiveness.png,
closed_loop.png and simulation.html (the PNGs embedded as data URIs, so the page can be
mailed or opened anywhere without its folder).
"""

from __future__ import annotations

import base64
import html
import json
import os

import numpy as np

from ntr.simulation.counterfactual import SHARES

# DESIGN.md "Counterfactual responsiveness": published reference points.
REFERENCES = [
    {"what": "no dislike signal in the model", "creator": 0.0, "content": 0.0, "source": "seed paper (~0)"},
    {"what": "dislike as input feature only", "creator": -0.228, "content": -0.227, "source": "seed paper"},
    {"what": "dislike as feature + NTR label", "creator": -0.641, "content": -0.608, "source": "seed paper"},
    {"what": "YouTube dislike button", "creator": None, "content": -0.12, "source": "independent study"},
    {
        "what": "YouTube 'don't recommend channel'",
        "creator": -0.43,
        "content": None,
        "source": "independent study",
    },
]
# Which of our variants each reference row corresponds to.
REFERENCE_VARIANT = {
    "no dislike signal in the model": "positives_only",
    "dislike as input feature only": "neg_features_only",
    "dislike as feature + NTR label": "ntr",
}


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def _ci(entry: dict) -> str:
    if entry.get("value") is None:
        return "n/a (A never shows it)"
    lo, hi = entry["ci95"]
    return f"{_pct(entry['value'])} [{_pct(lo)}, {_pct(hi)}]"


def plot_responsiveness(counterfactual: dict, path: str) -> None:
    """Grouped bars: responsiveness of the creator and category shares per reason and variant."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    variants = list(counterfactual)
    reasons = list(next(iter(counterfactual.values()))["reasons"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    width = 0.8 / max(1, len(variants))
    for ax, share in zip(axes, ("creator", "category"), strict=True):
        for j, variant in enumerate(variants):
            entries = [counterfactual[variant]["reasons"][r][share] for r in reasons]
            values = np.array([100 * (e["value"] or 0.0) for e in entries])
            lo = np.array([100 * (e["value"] - e["ci95"][0]) if e["ci95"] else 0.0 for e in entries])
            hi = np.array([100 * (e["ci95"][1] - e["value"]) if e["ci95"] else 0.0 for e in entries])
            x = np.arange(len(reasons)) + (j - (len(variants) - 1) / 2) * width
            bars = ax.bar(x, values, width, yerr=[lo, hi], capsize=2, label=variant)
            # A change of exactly 0 (e.g. positives_only, which never sees a dislike) has no
            # height: mark it so the reader sees a measured zero, not a missing bar.
            zero = values == 0
            ax.plot(x[zero], values[zero], "o", color=bars.patches[0].get_facecolor(), markersize=5)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(reasons)), reasons, rotation=20)
        ax.set_title(f"same-{share} share in the top K after a dislike")
        ax.set_ylabel("change vs watched-only branch, % (95% CI)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_closed_loop(closed_loop: dict, path: str) -> None:
    """Per-step dislike rate, skip rate and watch time for every arm."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    metrics = (("dislike_rate", "explicit dislikes per user"), ("skip_rate", "skips per user"))
    metrics += (("watch_seconds", "watch time per step, s"),)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (name, label) in zip(axes, metrics, strict=True):
        for arm, summary in closed_loop.items():
            curve = np.asarray(summary["curves"][name])
            # A 5-step running mean: per-step rates over a few hundred users are noisy.
            smooth = np.convolve(curve, np.ones(5) / 5, mode="valid") if len(curve) >= 5 else curve
            ax.plot(np.arange(len(smooth)) + (len(curve) - len(smooth)) / 2 + 1, smooth, label=arm)
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def headline(results: dict) -> list[str]:
    """One line per variant: creator-dislike and topic-dislike responsiveness; closed-loop arms."""
    lines = []
    for variant, cf in results.get("counterfactual", {}).items():
        creator = cf["reasons"].get("creator", {}).get("creator")
        topic = cf["reasons"].get("topic", {}).get("category")
        parts = []
        if creator:
            parts.append(f"creator dislike -> same-creator share {_ci(creator)}")
        if topic:
            parts.append(f"topic dislike -> same-category share {_ci(topic)}")
        lines.append(f"{variant}: " + "; ".join(parts))
    for arm, summary in results.get("closed_loop", {}).items():
        never = summary["creator_shown_again"]["share_never_shown_again"]
        lines.append(
            f"closed loop {arm}: dislike rate {summary['dislike_rate']['mean']:.4f}, "
            f"disliked creator not shown again in {_pct(never).lstrip('+')} of cases"
        )
    return lines


def reasonless(result: dict) -> bool:
    """True when every explicit-dislike branch (all but `skip`) gave the same shares."""
    # Values only: the bootstrap intervals differ between branches (one generator runs on).
    rows = [
        {name: entry["value"] for name, entry in shares.items()}
        for reason, shares in result["reasons"].items()
        if reason != "skip"
    ]
    return len(rows) > 1 and all(row == rows[0] for row in rows[1:])


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: str, alt: str) -> str:
    with open(path, "rb") as handle:
        data = base64.b64encode(handle.read()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(results: dict, images: dict[str, str]) -> str:
    """The report page; `images` maps a name to a PNG path to embed."""
    sections = [f"<h1>ntr: does a dislike work?</h1><p>{html.escape(results.get('summary', ''))}</p>"]
    sections.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in headline(results)) + "</ul>")
    cf = results.get("counterfactual", {})
    if cf:
        first = next(iter(cf.values()))
        sections.append(
            "<h2>Counterfactual responsiveness</h2>"
            f"<p>{first['pairs']:,} (history, k) pairs per variant; top {first['config']['k']}; branch A "
            "watches the k-th item to the end, branch B also dislikes it with the given reason (or skips "
            "it). Change of the share of similar items in the top K, B vs A, with a 95% bootstrap "
            "interval. A dot on the zero line is a measured change of exactly 0.</p>"
        )
        same = [v for v, result in cf.items() if reasonless(result)]
        if same:
            sections.append(
                f"<p>{html.escape(', '.join(same))}: the rows of every dislike reason are identical "
                "because this variant does not read reasons: branch B's history is the same whatever "
                "the reason, so the model's answer is too. Only the serving filters (closed loop, "
                "'+filters' arms) act on the reason for such a model.</p>"
            )
        if "responsiveness" in images:
            sections.append(_image(images["responsiveness"], "responsiveness per reason and variant"))
        rows = []
        for variant, result in cf.items():
            for reason, shares in result["reasons"].items():
                rows.append([variant, reason] + [_ci(shares[s]) for s in SHARES])
        sections.append(
            _table(
                [
                    "variant",
                    "reason",
                    "same item",
                    "same creator",
                    "same category",
                    "embedding neighbours",
                    "other (collateral)",
                ],
                rows,
            )
        )
        ref_rows = []
        for ref in REFERENCES:
            variant = REFERENCE_VARIANT.get(ref["what"])
            ours = cf.get(variant, {}).get("reasons", {}) if variant else {}
            ref_rows.append(
                [
                    ref["what"],
                    f"{_pct(ref['creator'])} / {_pct(ref['content'])}",
                    ref["source"],
                    variant or "(service filters: see closed loop)",
                    f"{_ci(ours['creator']['creator'])} / {_ci(ours['topic']['category'])}"
                    if "creator" in ours and "topic" in ours
                    else "not run",
                ]
            )
        sections.append("<h3>Beside the reference points</h3>")
        sections.append(
            _table(
                [
                    "reference",
                    "creator / content",
                    "source",
                    "our variant",
                    "ours: creator dislike / topic dislike",
                ],
                ref_rows,
            )
        )
    loop = results.get("closed_loop", {})
    if loop:
        cfg = results.get("closed_loop_config", {})
        sections.append(
            "<h2>Closed loop</h2>"
            f"<p>{cfg.get('num_users', '?')} world users, {cfg.get('steps', '?')} steps, slate of "
            f"{cfg.get('slate_size', '?')}, choice model '{cfg.get('choice', '?')}'. An arm named '+filters' "
            "is the serving Recommender; the others are the model alone (consumed items excluded). "
            "The filters act on the reason: a dislike with a creator reason (or hide creator) drops "
            "that creator, one with a topic reason the category, and any other (quality, offensive, "
            "repetition, none) only the item. 'Disliked creator / category never shown again' counts "
            "every explicit dislike, whatever its reason, so it stays under 100% behind the filters: "
            "the creator of a quality dislike may come back, by design.</p>"
        )
        if "closed_loop" in images:
            sections.append(_image(images["closed_loop"], "closed-loop curves"))
        rows = []
        for arm, s in loop.items():
            rows.append(
                [
                    arm,
                    f"{s['dislike_rate']['mean']:.4f} ± {s['dislike_rate']['se']:.4f}",
                    f"{s['skip_rate']['mean']:.3f} ± {s['skip_rate']['se']:.3f}",
                    f"{s['watch_seconds']['mean']:.1f} ± {s['watch_seconds']['se']:.1f}",
                    _pct(s["repeated_creator_dislike_rate"]).lstrip("+"),
                    _pct(s["creator_shown_again"]["share_never_shown_again"]).lstrip("+"),
                    _pct(s["category_shown_again"]["share_never_shown_again"]).lstrip("+"),
                ]
            )
        sections.append(
            _table(
                [
                    "arm",
                    "dislike rate",
                    "skip rate",
                    "watch s/step",
                    "repeat creator dislikes",
                    "disliked creator never shown again",
                    "disliked category never shown again",
                ],
                rows,
            )
        )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%;border:1px solid #eee}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ntr simulation report</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )


def write_report(results: dict, reports_dir: str) -> dict[str, str]:
    """Writes simulation.json, the PNGs and simulation.html; returns their paths."""
    os.makedirs(reports_dir, exist_ok=True)
    paths = {
        "json": os.path.join(reports_dir, "simulation.json"),
        "html": os.path.join(reports_dir, "simulation.html"),
    }
    images = {}
    if results.get("counterfactual"):
        images["responsiveness"] = os.path.join(reports_dir, "responsiveness.png")
        plot_responsiveness(results["counterfactual"], images["responsiveness"])
    if results.get("closed_loop"):
        images["closed_loop"] = os.path.join(reports_dir, "closed_loop.png")
        plot_closed_loop(results["closed_loop"], images["closed_loop"])
    with open(paths["json"], "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
    with open(paths["html"], "w", encoding="utf-8") as handle:
        handle.write(render_html(results, images))
    return {**paths, **images}
