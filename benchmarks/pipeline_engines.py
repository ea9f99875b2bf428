"""`ntr preprocess` on a distributed engine: Beam on dask.distributed against DirectRunner.

On the default world (and, with --large, the 10^6-event world) it runs, in one process and on
the same input: DirectRunner in-memory (the reference), then ntr's Dask runner
(`pipelines.dask_runner`) on a local cluster of 1 and of 2 worker processes. Every Dask output
must equal DirectRunner's record for record (`pipelines.compare.differences`), and the counts
must reconcile; the table gives events/s and the ratio to the reference.

    python -m benchmarks.pipeline_engines [--root /tmp/ntr-bench/engines] [--workers 1,2] [--large]
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.common import write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/ntr-bench/engines", help="worlds and outputs go here")
    parser.add_argument("--workers", default="1,2", help="Dask worker processes to try")
    parser.add_argument("--large", action="store_true", help="also the --scale large world (10^6 events)")
    args = parser.parse_args()
    from ntr.pipelines.compare import differences  # noqa: PLC0415
    from ntr.pipelines.config import PreprocessConfig  # noqa: PLC0415
    from ntr.pipelines.dask_runner import local_cluster  # noqa: PLC0415
    from ntr.pipelines.pipeline import run_preprocess  # noqa: PLC0415
    from ntr.simulation.world import scaled_config, simulate, write_world  # noqa: PLC0415

    lines = [
        "Reference: DirectRunner, in-memory. Dask: `ntr preprocess --dask-workers N` (a "
        "`dask.distributed.LocalCluster` of N processes, one thread each, on this machine; the "
        "cluster's start is not timed). Every Dask output equals the reference's record for record "
        "(asserted: TFRecords, vocabularies, item counts, dead letters, stats without timings).\n",
        "| world | events | engine | seconds | events/s | ratio to reference |",
        "|---|---|---|---|---|---|",
    ]
    for scale in ["default"] + (["large"] if args.large else []):
        raw = os.path.join(args.root, scale, "raw")
        if not os.path.exists(os.path.join(raw, "events.jsonl")):
            write_world(simulate(scaled_config(scale, seed=0)), raw)

        def config(out: str, raw: str = raw, scale: str = scale) -> PreprocessConfig:
            return PreprocessConfig(
                events_path=os.path.join(raw, "events.jsonl"),
                items_path=os.path.join(raw, "items.jsonl"),
                output_dir=os.path.join(args.root, scale, out),
            )

        started = time.perf_counter()
        reference = run_preprocess(config("direct"))
        ref_seconds = time.perf_counter() - started
        events = reference["rows_in"]
        rows = [("DirectRunner (reference)", ref_seconds)]
        for workers in (int(w) for w in args.workers.split(",")):
            with local_cluster(workers) as flags:
                started = time.perf_counter()
                stats = run_preprocess(config(f"dask-{workers}"), flags)
                seconds = time.perf_counter() - started
            differ = differences(
                os.path.join(args.root, scale, "direct"), os.path.join(args.root, scale, f"dask-{workers}")
            )
            if differ or not stats["reconciled"]:
                raise SystemExit(f"Dask with {workers} workers differs from DirectRunner in {differ}")
            rows.append((f"Dask, {workers} worker process{'es' if workers > 1 else ''}", seconds))
            print(f"{scale}: dask {workers} workers {seconds:.1f}s (direct {ref_seconds:.1f}s)", flush=True)
        for name, seconds in rows:
            lines.append(
                f"| {scale} | {events:,} | {name} | {seconds:.1f} | {events / seconds:,.0f} | {ref_seconds / seconds:.2f}x |"
            )
    write_section("pipeline_engines", "Beam on a distributed engine (dask.distributed)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
