"""What each log teaches about dislikes: the world under each logging policy, and two real logs.

Per log (`ntr.simulation.lessons.lesson_in_log`): the share of the next 10 exposures after an
explicit negative that share its creator / primary category, and the label mix of every later
exposure of the same user to a disliked creator or category against all other exposures. The
world runs at its default size and seed for each policy; ml-100k uses real directors as
creators (verified rows), KuaiRand-Pure its authors and tags.

    python -m benchmarks.lesson_in_logs [--datasets $NTR_DATASETS]
"""

from __future__ import annotations

import argparse
import os

from benchmarks.common import DATASETS_DIR, write_section


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _row(name: str, r: dict) -> str:
    later_c, later_k, others = r["later"]["creator"], r["later"]["category"], r["others"]

    def neg(mix):
        labels = mix["labels"]
        if labels["EXPLICIT_NEGATIVE"] is None:
            return "n/a"
        return f"{_pct(labels['EXPLICIT_NEGATIVE'])} / {_pct(labels['IMPLICIT_NEGATIVE'])} / {_pct(labels['POSITIVE'])}"

    per = later_c["per_dislike"]
    return (
        f"| {name} | {r['events']:,} | {r['dislikes']:,} | {_pct(r['next_same_creator'])} | "
        f"{_pct(r['next_same_category'])} | {'n/a' if per is None else f'{per:.2f}'} | {neg(later_c)} | "
        f"{neg(later_k)} | {neg(others)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=DATASETS_DIR, help="folder of the public datasets")
    parser.add_argument("--policies", default="feed,mix", help="world logging policies to compare")
    args = parser.parse_args()
    from ntr.pipelines.readers import read_kuairand_pure, read_movielens  # noqa: PLC0415
    from ntr.simulation.lessons import lesson_in_log  # noqa: PLC0415
    from ntr.simulation.world import scaled_config, simulate  # noqa: PLC0415

    rows = []
    for policy in args.policies.split(","):
        log = simulate(scaled_config("default", policy=policy))
        result = lesson_in_log(list(log.event_rows()), list(log.catalogue.item_rows()))
        rows.append(_row(f"world, `{policy}` policy" + (" (default)" if policy == "feed" else ""), result))
        print(rows[-1], flush=True)
    ml = os.path.join(args.datasets, "ml-100k")
    if os.path.isdir(ml):
        events, items = read_movielens(ml, os.path.join(args.datasets, "ml-100k-directors"))
        rows.append(_row("ml-100k (rating <= 2; creator = director)", lesson_in_log(events, items)))
        print(rows[-1], flush=True)
    pure = os.path.join(args.datasets, "kuairand_pure_log")
    if os.path.isdir(pure):
        events, items = read_kuairand_pure(pure)
        rows.append(
            _row("KuaiRand-Pure (hate; creator = author, category = tag)", lesson_in_log(events, items))
        )
        print(rows[-1], flush=True)
    body = (
        "Per log: explicit negatives (dislikes); the share of the next 10 exposures of the same user "
        "that share the disliked item's creator / primary category; later exposures of that user to a "
        "disliked creator per dislike; and the label mix (explicit negative / skip / positive) of every "
        "later exposure to a disliked creator, to a disliked category, and of all other exposures. "
        'A log teaches "after a dislike, that group fails" where the first mixes are far more negative '
        "than the last. ml-100k has no watch time, so it has no skips; KuaiRand-Pure's authors rarely "
        "repeat for a user.\n\n"
        "| log | events | dislikes | next 10: same creator | next 10: same category | later same-creator exposures per dislike | later same creator: expl / skip / pos | later same category: expl / skip / pos | all other exposures: expl / skip / pos |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    write_section("lesson_in_logs", "What the logs teach about dislikes", body)


if __name__ == "__main__":
    main()
