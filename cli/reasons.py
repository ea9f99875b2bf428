"""`ntr reasons train|label`: the dislike-reason model (train it; fill in missing reasons)."""

from __future__ import annotations

import argparse
import json
import os
import time

from ntr.cli.beam_args import add_engine_argument, engine_args

HELP = (
    "train: fit the reason model (MiniLM item vectors + history features + a head; supervised, then "
    "progressive GRPO) on "
    "WORKDIR/raw; label: write WORKDIR/raw/events.labelled.jsonl with reasons filled in for negatives that "
    "have none (preprocess it with --events). label runs as a Beam pipeline: Beam flags pass through, e.g. "
    "--runner=DirectRunner --direct_num_workers=2."
)
# `ntr reasons label` hands flags it does not define to Beam (checked by cli.beam_args).
ACCEPTS_BEAM_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("train", "label"), help="what to do")
    parser.add_argument("--model-dir", help="reason model folder (default WORKDIR/reasons)")
    parser.add_argument(
        "--cache-dir", help="train: embedding cache of item descriptions (default WORKDIR/reasons/embeddings)"
    )
    parser.add_argument("--epochs", type=int, default=30, help="train: supervised epochs")
    parser.add_argument(
        "--grpo-steps", type=int, default=100, help="train: GRPO steps per curriculum stage (0: off)"
    )
    parser.add_argument("--seed", type=int, default=0, help="train: user split, sampling and initialisation")
    parser.add_argument(
        "--target-precision",
        type=float,
        default=0.9,
        help="train: share of predicted creator/category removals that must be right on validation users",
    )
    parser.add_argument("--output", help="label: output events (default WORKDIR/raw/events.labelled.jsonl)")
    add_engine_argument(parser)


def serving_threshold(model, batch, examples, target_precision: float) -> dict:
    """The group-removal threshold, chosen on validation dislikes whose reason the user stated."""
    from ntr.reasons.data import NO_REASON  # noqa: PLC0415
    from ntr.reasons.threshold import choose_threshold  # noqa: PLC0415
    from ntr.reasons.train import predict  # noqa: PLC0415

    _, reason, confidence = predict(model, batch)
    stated = examples.explicit & (examples.reason != NO_REASON)
    chosen = choose_threshold(confidence[stated], reason[stated], examples.reason[stated], target_precision)
    print(
        f"serving threshold {chosen['threshold']:.3f}: on {chosen['n']} validation dislikes with a stated "
        f"reason, {chosen['removals']} predicted group removals, precision {chosen['precision']}"
    )
    return chosen


def group_removal_on_test(model, batch, examples, threshold: float) -> dict:
    """What the threshold does on held-out users, against the true reasons: dislikes and skips."""
    from ntr.reasons.data import NO_REASON  # noqa: PLC0415
    from ntr.reasons.threshold import removal_stats  # noqa: PLC0415
    from ntr.reasons.train import predict  # noqa: PLC0415

    _, reason, confidence = predict(model, batch)
    known = examples.true_reason != NO_REASON
    out = {"threshold": threshold}
    for name, mask in (("explicit", examples.explicit & known), ("skips", ~examples.explicit & known)):
        out[name] = removal_stats(confidence[mask], reason[mask], examples.true_reason[mask], threshold)
    return out


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ntr.reasons.label import load_reason_model, save_reason_model  # noqa: PLC0415

    raw = os.path.join(args.workdir, "raw")
    model_dir = args.model_dir or os.path.join(args.workdir, "reasons")
    if not os.path.exists(os.path.join(raw, "events.jsonl")):
        raise FileNotFoundError(f"{raw}/events.jsonl is missing: run `ntr generate` (or a reader) first.")
    if args.action != "label" and (extra or args.dask_workers):
        flags = " ".join(extra) or f"--dask-workers {args.dask_workers}"
        raise ValueError(f"`ntr reasons train` takes no Beam flags ({flags}); only label runs on Beam.")
    if args.action == "label":
        from ntr.reasons.beam_label import run_beam_label  # noqa: PLC0415

        output = args.output or os.path.join(raw, "events.labelled.jsonl")
        load_reason_model(model_dir)  # a missing or stale model fails here, before Beam starts
        with engine_args(args.dask_workers, extra) as flags:
            runner = next((a for a in flags if a.startswith("--runner")), "--runner=DirectRunner")
            print(f"labelling {raw}/events.jsonl on Beam ({runner})", flush=True)
            counts = run_beam_label(raw, model_dir, output, flags)
        print(json.dumps(counts, sort_keys=True))
        print(f"wrote {output}; train on it with `ntr preprocess --events {output}`")
        return 0
    from ntr.reasons.catalogue import ItemVectors  # noqa: PLC0415
    from ntr.reasons.data import ReasonDataConfig, build_examples, load_raw  # noqa: PLC0415
    from ntr.reasons.encoder import EmbeddingCache  # noqa: PLC0415
    from ntr.reasons.evaluate import evaluate  # noqa: PLC0415
    from ntr.reasons.train import ReasonTrainConfig, as_batch, train_grpo, train_supervised  # noqa: PLC0415

    started = time.perf_counter()
    events_by_user, items = load_raw(raw)
    cache = EmbeddingCache(args.cache_dir or os.path.join(model_dir, "embeddings"))
    vectors = ItemVectors.embed(items, cache)
    print(
        f"embedded {len(items)} item descriptions in {time.perf_counter() - started:.0f}s "
        f"(cached in {cache.directory})"
    )
    data_config = ReasonDataConfig(seed=args.seed)
    examples = build_examples(events_by_user, items, vectors, data_config)
    sizes = f"{len(examples['train'])} train, {len(examples['valid'])} valid, {len(examples['test'])} test"
    print(f"examples: {sizes} ({time.perf_counter() - started:.0f}s)", flush=True)
    train, valid, test = (as_batch(examples[split]) for split in ("train", "valid", "test"))
    config = ReasonTrainConfig(epochs=args.epochs, grpo_steps_per_stage=args.grpo_steps, seed=args.seed)
    model = train_supervised(train, config)
    if args.grpo_steps > 0:
        model = train_grpo(model, train, config)
    metrics = evaluate(model, test, examples["test"])
    serving = serving_threshold(model, valid, examples["valid"], args.target_precision)
    metrics["group_removal"] = group_removal_on_test(model, test, examples["test"], serving["threshold"])
    extra = {"data": data_config.__dict__, "metrics": metrics, "serving": serving}
    save_reason_model(model, config, model_dir, extra, vectors)
    print(json.dumps(metrics, indent=2, sort_keys=True))
    print(f"saved {model_dir} in {time.perf_counter() - started:.0f}s")
    return 0
