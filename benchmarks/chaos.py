"""Chaos: kill -9 at random moments of `ntr preprocess`, `ntr train`, `ntr reasons label` and
`ntr serve` under load; count acknowledged events lost, outputs half-written but taken as
complete, and resumed results that differ from an uninterrupted run.

    python -m benchmarks.chaos --workdir /tmp/ntr-chaos --trials preprocess=30,train=15,label=15,serve=40

Each batch stage is run once uninterrupted (the reference, timed), then per trial started,
killed with SIGKILL after a uniform random share of the reference's time, inspected (does its
completion marker exist? then its outputs must equal the reference's), and run again to the
end (a preprocess or label rerun starts over, a train rerun resumes from its checkpoint); the
result must equal the reference. The service is killed under a stream of single-event posts,
each with an `event_id`, restarted on the same store, and sent again whatever was not
acknowledged (a client's retry); at the end every event must be stored exactly once.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import numpy as np

from benchmarks.common import write_section

ENTRY = [sys.executable, "-c", "from ntr.cli.entry import run; run()"]
# Keys of stats.json that measure the run, not its result.
TIMING_KEYS = ("seconds", "events_per_second")


def ntr(*args: str) -> list[str]:
    return [*ENTRY, *args]


def run_to_end(command: list[str], log: str) -> float:
    start = time.perf_counter()
    with open(log, "a") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        raise RuntimeError(f"{' '.join(command[3:])} exited {code}; see {log}")
    return time.perf_counter() - start


def run_and_kill(command: list[str], delay: float, log: str) -> bool:
    """Starts `command`, SIGKILLs it after `delay` s; False when it finished before."""
    with open(log, "a") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        try:
            process.wait(delay)
            return False
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return True


def tfrecords(path: str):
    """The records of a gzipped TFRecord file (length, crc, data, crc), each a (Sequence)Example
    serialised deterministically: protobuf writes a map's entries (the features) in an order
    that differs between processes, so the bytes as written differ for equal examples."""
    from tensorflow.core.example import example_pb2  # noqa: PLC0415

    with gzip.open(path, "rb") as handle:
        while header := handle.read(12):
            length = int.from_bytes(header[:8], "little")
            # Example and SequenceExample share field 1 (features / context): one parse fits both.
            example = example_pb2.SequenceExample.FromString(handle.read(length))
            yield example.SerializeToString(deterministic=True)
            handle.read(4)


def data_fingerprint(data_dir: str) -> str:
    """A hash of what `ntr preprocess` produced, independent of shard layout and order."""
    parts = {}
    for root, _, files in os.walk(data_dir):
        for name in files:
            path = os.path.join(root, name)
            key = os.path.relpath(path, data_dir).split("-")[0]  # train-00000-of-00001 -> train
            if name == "stats.json":
                with open(path) as handle:
                    stats = {k: v for k, v in json.load(handle).items() if k not in TIMING_KEYS}
                lines = [json.dumps(stats, sort_keys=True).encode()]
            elif name == "config.json":
                continue  # the paths it names differ by folder
            elif name.endswith(".tfrecord.gz"):
                lines = list(tfrecords(path))
            else:
                with open(path, "rb") as handle:
                    lines = handle.read().splitlines()
            parts.setdefault(key, []).extend(lines)
    digest = hashlib.sha256()
    for key in sorted(parts):
        digest.update(key.encode())
        for line in sorted(parts[key]):
            digest.update(hashlib.sha256(line).digest())
    return digest.hexdigest()


def lines_fingerprint(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(b"\n".join(sorted(handle.read().splitlines()))).hexdigest()


def exported(model_dir: str) -> bool:
    """The train stage's completion marker: `export` in config.json (written last, whole)."""
    try:
        with open(os.path.join(model_dir, "config.json")) as handle:
            return "export" in json.load(handle)
    except (OSError, ValueError):
        return False


def batch_stage(name, trials, rng, command, marker, fingerprint, reset, resume_command, log) -> dict:
    """Reference run, then `trials` kill / inspect / rerun cycles of one batch stage."""
    reset(fresh=True)
    seconds = run_to_end(command, log)
    reference = fingerprint()
    counts = {"trials": 0, "runs": 0, "marker_after_kill": 0, "corrupt_accepted": 0, "resumed_differ": 0}
    # A trial is a run killed mid-way: a run that ends before its kill time (the machine was
    # faster than during the reference run) is inspected the same way but does not count.
    while counts["trials"] < trials and counts["runs"] < 3 * trials:
        reset(fresh=True)
        delay = float(rng.uniform(0.05, 1.0)) * seconds
        killed = run_and_kill(command, delay, log)
        counts["runs"] += 1
        counts["trials"] += killed
        if marker():
            counts["marker_after_kill"] += killed
            try:
                same = fingerprint() == reference
            except (OSError, EOFError, ValueError):  # a half-written output may not even parse
                same = False
            counts["corrupt_accepted"] += not same
        run_to_end(resume_command, log)
        counts["resumed_differ"] += fingerprint() != reference
        print(f"chaos {name} run {counts['runs']}: {counts}", flush=True)
    counts["reference_s"] = seconds
    return counts


def serve_stage(trials, rng, model_dir, db, log) -> dict:
    """Kill -9 under a stream of posts, restart on the same store, retry what was unacknowledged."""
    from ntr.serving.process import ServerProcess  # noqa: PLC0415

    if os.path.exists(db):
        os.remove(db)
    acknowledged, pending, counter = set(), {}, 0
    lost = 0
    for trial in range(trials + 1):  # the last start only retries and counts
        server = ServerProcess(model_dir, None, db, "--user-rate", "100000/s")
        if trial < trials:
            threading.Timer(
                float(rng.uniform(0.5, 3.0)), lambda s=server: os.kill(s.process.pid, signal.SIGKILL)
            ).start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            retry = list(pending.items())
            while True:
                if retry:
                    event_id, body = retry.pop()
                elif trial < trials:
                    counter += 1
                    event_id = f"e{counter}"
                    body = {
                        "user_id": f"u{counter % 17}",
                        "events": [
                            {"item_id": "x", "timestamp": counter, "action": "view", "event_id": event_id}
                        ],
                    }
                    pending[event_id] = body
                else:
                    break
                try:
                    response = client.post("/v1/events", json=body)
                except httpx.TransportError:
                    break  # killed
                if response.status_code == 200:
                    acknowledged.add(event_id)
                    pending.pop(event_id, None)
        if trial < trials:
            server.stop(signal.SIGKILL)  # already killed: waits and closes its log
            with sqlite3.connect(db) as handle:
                stored = {row[0] for row in handle.execute("SELECT event_id FROM events")}
            lost += len(acknowledged - stored)
            print(
                f"chaos serve trial {trial + 1}/{trials}: {len(acknowledged)} acknowledged, {lost} lost",
                flush=True,
            )
        else:
            assert server.stop_gracefully(), server.log()
    with sqlite3.connect(db) as handle:
        rows = [row[0] for row in handle.execute("SELECT event_id FROM events")]
    return {
        "trials": trials,
        "sent": counter,
        "acknowledged": len(acknowledged),
        "lost": lost,
        "stored": len(rows),
        "duplicates": len(rows) - len(set(rows)),
        "missing_after_retry": counter - len(set(rows)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", default="/tmp/ntr-chaos", help="scratch folder (a tiny world is made in it)"
    )
    parser.add_argument(
        "--trials", default="preprocess=30,train=15,label=15,serve=40", help="trials per stage"
    )
    parser.add_argument("--seed", type=int, default=0, help="kill times")
    parser.add_argument("--section", default="chaos", help="BENCHMARKS.md section to write")
    args = parser.parse_args()
    trials = {k: int(v) for k, v in (part.split("=") for part in args.trials.split(","))}
    rng = np.random.default_rng(args.seed)
    base, log = args.workdir, os.path.join(args.workdir, "chaos.log")
    os.makedirs(base, exist_ok=True)
    if not os.path.exists(os.path.join(base, "raw", "events.jsonl")):
        run_to_end(ntr("generate", "--workdir", base, "--scale", "tiny", "--seed", "0"), log)
    if not os.path.exists(os.path.join(base, "data", "stats.json")):
        run_to_end(ntr("preprocess", "--workdir", base), log)
    if not os.path.exists(os.path.join(base, "reasons", "model.pt")):
        run_to_end(ntr("reasons", "train", "--workdir", base, "--epochs", "2", "--grpo-steps", "2"), log)
    results = {}

    trial_dir = os.path.join(base, "trial")
    data = os.path.join(trial_dir, "data")

    def reset_preprocess(fresh):
        os.makedirs(trial_dir, exist_ok=True)
        if not os.path.exists(os.path.join(trial_dir, "raw")):
            os.symlink(os.path.join(base, "raw"), os.path.join(trial_dir, "raw"))

    if trials.get("preprocess"):
        command = ntr("preprocess", "--workdir", trial_dir)
        results["preprocess"] = batch_stage(
            "preprocess", trials["preprocess"], rng, command, lambda: os.path.exists(os.path.join(data, "stats.json")),
            lambda: data_fingerprint(data), reset_preprocess, command, log,
        )  # fmt: skip

    model = os.path.join(base, "train-trial")

    def reset_train(fresh):
        if fresh and os.path.exists(model):
            shutil.rmtree(model)

    def embeddings():
        return hashlib.sha256(np.load(os.path.join(model, "item_embeddings.npy")).tobytes()).hexdigest()

    if trials.get("train"):
        command = ntr(
            "train",
            "--workdir",
            base,
            "--variant",
            "ntr",
            "--model-dir",
            model,
            "--epochs",
            "2",
            "--no-progress",
        )
        results["train"] = batch_stage(
            "train", trials["train"], rng, [*command, "--fresh"], lambda: exported(model),
            embeddings, reset_train, command, log,
        )  # fmt: skip

    labelled = os.path.join(base, "labelled.jsonl")

    def reset_label(fresh):
        if os.path.exists(labelled):
            os.remove(labelled)

    if trials.get("label"):
        command = ntr("reasons", "label", "--workdir", base, "--output", labelled)
        results["label"] = batch_stage(
            "label", trials["label"], rng, command, lambda: os.path.exists(labelled), lambda: lines_fingerprint(labelled),
            reset_label, command, log,
        )  # fmt: skip

    if trials.get("serve"):
        if not os.path.exists(os.path.join(base, "models", "ntr", "saved_model")):
            run_to_end(
                ntr("train", "--workdir", base, "--variant", "ntr", "--epochs", "2", "--no-progress"), log
            )
        results["serve"] = serve_stage(
            trials["serve"], rng, os.path.join(base, "models", "ntr"), os.path.join(base, "chaos.sqlite"), log
        )

    rows = [
        "| stage | runs | killed mid-run (trials) | completion marker after the kill | "
        "output taken as complete but not equal to the reference | "
        "rerun / resumed result differs from the uninterrupted run | uninterrupted run |",
        "|---|---|---|---|---|---|---|",
    ]
    for stage in ("preprocess", "train", "label"):
        if stage in results:
            r = results[stage]
            rows.append(
                f"| `ntr {'reasons label' if stage == 'label' else stage}` | {r['runs']} | {r['trials']} | "
                f"{r['marker_after_kill']} | **{r['corrupt_accepted']}** | **{r['resumed_differ']}** | {r['reference_s']:.1f} s |"
            )
    body = [
        "Tiny world (`ntr generate --scale tiny`). Each kill is SIGKILL after a uniform random 5-100% of the "
        "uninterrupted run's time. Markers: `data/stats.json` (preprocess), `export` in the model's config.json (train), "
        "the output file (label). A train rerun resumes from its last checkpoint; results compared exactly "
        "(preprocess: every output record, shard layout aside; train: the exported item embeddings; label: every line).",
        "",
        *rows,
    ]
    if "serve" in results:
        r = results["serve"]
        body += [
            "",
            f"`ntr serve`, {r['trials']} kills under a stream of single-event posts (each with an `event_id`), "
            f"restarted on the same store, unacknowledged posts sent again: {r['sent']} events sent, "
            f"{r['acknowledged']} acknowledged, **{r['lost']} acknowledged events lost**, {r['stored']} rows stored, "
            f"**{r['duplicates']} stored twice**, {r['missing_after_retry']} missing after the retries.",
        ]
    total = sum(r["trials"] for r in results.values())
    body += ["", f"{total} trials (kills mid-run) in all."]
    write_section(args.section, "Chaos: kill -9 at random moments", "\n".join(body))
    print("\n".join(body))


if __name__ == "__main__":
    main()
