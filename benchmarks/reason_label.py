"""`ntr reasons label` on the default world: the Beam labeller against the in-memory one.

Labels every negative without a reason in WORKDIR/raw/events.jsonl with a trained reason model,
once with the in-memory labeller (`reasons.label.label_events`, the reference: a plain loop
over users) and once per DirectRunner worker count with the Beam pipeline
(`reasons.beam_label.run_beam_label`), in one run. Checks that every Beam output equals the
in-memory output line for line (as sorted sets of JSON lines) and that the counts reconcile
(events in = events out; filled = the sum over reasons); reports events/s and the ratio to
the reference.

    python -m benchmarks.reason_label [--workdir /tmp/ntr-bench/world] [--model-dir DIR] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.common import NTR, prepare, run, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/ntr-bench/world", help="default-world workdir")
    parser.add_argument("--model-dir", help="reason model (default WORKDIR/reasons; trained when missing)")
    parser.add_argument("--workers", default="1,2", help="DirectRunner worker counts")
    args = parser.parse_args()
    from ntr.reasons.beam_label import run_beam_label  # noqa: PLC0415
    from ntr.reasons.catalogue import ItemVectors  # noqa: PLC0415
    from ntr.reasons.data import load_items  # noqa: PLC0415
    from ntr.reasons.label import label_events, load_reason_model  # noqa: PLC0415

    prepare("world", args.workdir, "")
    raw = os.path.join(args.workdir, "raw")
    model_dir = args.model_dir or os.path.join(args.workdir, "reasons")
    if not os.path.exists(os.path.join(model_dir, "model.pt")):
        run([NTR, "reasons", "train", "--workdir", args.workdir, "--model-dir", model_dir])
    out_dir = os.path.join(args.workdir, "reports", "reason-label")
    os.makedirs(out_dir, exist_ok=True)

    started = time.perf_counter()
    model = load_reason_model(model_dir)
    vectors = ItemVectors.load(model_dir, load_items(os.path.join(raw, "items.jsonl")))
    memory_path = os.path.join(out_dir, "memory.jsonl")
    counts = label_events(raw, model, vectors, memory_path)
    memory_seconds = time.perf_counter() - started
    with open(memory_path, encoding="utf-8") as handle:
        reference = sorted(handle)
    rows = [("in-memory labeller (reference)", memory_seconds, "-", "-")]
    for workers in (int(w) for w in args.workers.split(",")):
        path = os.path.join(out_dir, f"beam-{workers}.jsonl")
        started = time.perf_counter()
        beam_counts = run_beam_label(
            raw, model_dir, path, ["--runner=DirectRunner", f"--direct_num_workers={workers}"]
        )
        seconds = time.perf_counter() - started
        with open(path, encoding="utf-8") as handle:
            same = sorted(handle) == reference
        reconciled = {k: beam_counts[k] for k in counts} == counts
        if not (same and reconciled):
            raise SystemExit(
                f"Beam ({workers} workers) differs from the in-memory labeller: {beam_counts} vs {counts}"
            )
        rows.append((f"Beam DirectRunner, {workers} worker(s)", seconds, "identical", "reconcile"))
        print(workers, "workers done", flush=True)
    events = counts["events"]
    lines = [
        f"Default world: {events:,} events, {counts['filled']:,} negatives given a reason "
        f"({', '.join(f'{r} {n:,}' for r, n in sorted(counts['filled_reasons'].items()))}), "
        f"{counts['kept']:,} reasons kept from the log. Wall time includes reading and writing.\n",
        "| labeller | seconds | events/s | ratio to reference | output vs in-memory | counts |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds, same, reconciled in rows:
        lines.append(
            f"| {name} | {seconds:.1f} | {events / seconds:,.0f} | {memory_seconds / seconds:.2f}x | {same} | {reconciled} |"
        )
    write_section("reason_label", "Labelling a log: Beam against the in-memory labeller", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
