"""`ntr generate`: simulate the synthetic world and write WORKDIR/raw/."""

from __future__ import annotations

import argparse
import os
import time

from ntr.cli.progress import Progress
from ntr.simulation.policies import POLICIES
from ntr.simulation.world import SCALES, WorldLog, scaled_config, simulate, write_world

HELP = "Generate the synthetic world's event log and item catalogue into WORKDIR/raw/."

# Flag -> WorldConfig field, for the flags that override the chosen scale.
_OVERRIDES = {
    "users": "n_users",
    "items": "n_items",
    "creators": "n_creators",
    "categories": "n_categories",
    "events_per_user": "events_per_user",
    "policy": "policy",
    "trigger_rate": "trigger_rate",
    "reason_given_share": "reason_given_share",
    "random_share": "random_share",
    "feed_creator_share": "feed_creator_share",
    "aversion_persistence": "aversion_persistence",
    "hated_in_liked_share": "hated_in_liked_share",
    "catalogue": "catalogue_path",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", default="default", choices=sorted(SCALES), help="named world size")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same logs)")
    parser.add_argument("--users", type=int, help="number of users (overrides --scale)")
    parser.add_argument("--items", type=int, help="number of items (overrides --scale)")
    parser.add_argument("--creators", type=int, help="number of creators (overrides --scale)")
    parser.add_argument("--categories", type=int, help="number of categories (overrides --scale)")
    parser.add_argument("--events-per-user", type=float, help="mean exposures per user")
    parser.add_argument("--policy", choices=sorted(POLICIES), help="logging policy (default feed)")
    parser.add_argument(
        "--feed-creator-share",
        type=float,
        help="feed policy: share of slots continuing from a recently engaged creator (default 0.4)",
    )
    parser.add_argument(
        "--aversion-persistence",
        type=float,
        help="chance a hated creator/topic is felt as such on each exposure (default 1.0)",
    )
    parser.add_argument(
        "--hated-in-liked-share",
        type=float,
        help="share of hated creators drawn from the user's liked categories (default 0.5)",
    )
    parser.add_argument("--trigger-rate", type=float, help="scales explicit-feedback probabilities")
    parser.add_argument(
        "--reason-given-share", type=float, help="share of explicit negatives that state their reason"
    )
    parser.add_argument(
        "--random-share",
        type=float,
        help="share of exposures shown uniformly at random, logged is_random (default 0.03)",
    )
    parser.add_argument(
        "--catalogue", help="real item catalogue: the kuairand_pure_meta folder (README: Public datasets)"
    )


def config_from_args(args: argparse.Namespace):
    overrides = {
        field: getattr(args, flag) for flag, field in _OVERRIDES.items() if getattr(args, flag) is not None
    }
    return scaled_config(args.scale, seed=args.seed, **overrides)


def print_world_summary(summary: dict, raw_dir: str) -> None:
    print(
        f"world: {summary['users']} users, {summary['items']} items, {summary['creators']} creators, "
        f"{summary['categories']} categories, {summary['events']} events"
    )
    print(
        f"  explicit negatives {100 * summary['explicit_negative_rate']:.2f}%  "
        f"skips {100 * summary['skip_rate']:.2f}%  positives {100 * summary['positive_rate']:.2f}%"
    )
    print(f"  actions: {summary['actions']}")
    print(f"  stated reasons: {summary['reasons']}")
    print(f"  wrote {raw_dir}/events.jsonl, items.jsonl, world.json")


def generate_world(config, raw_dir: str) -> tuple[WorldLog, dict]:
    """Simulates and writes the world, with progress; returns the log and its summary."""
    start = time.perf_counter()
    log = simulate(config, progress=Progress("simulating world"))
    summary = write_world(log, raw_dir)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return log, summary


def run(args: argparse.Namespace, extra: list[str]) -> int:
    raw_dir = os.path.join(args.workdir, "raw")
    _, summary = generate_world(config_from_args(args), raw_dir)
    print_world_summary(summary, raw_dir)
    print(f"  took {summary['seconds']:.1f}s")
    return 0
