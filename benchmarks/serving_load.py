"""The recommendation service under load: latency and throughput at a fixed request rate, and
acknowledged events lost when the server is killed (-9) mid-load.

Set-up: the default world's `ntr` variant and its ScaNN index (made with `ntr demo` /
`ntr index` if missing), `ntr serve` as its own process on loopback (access log off). Users are
validation histories, first stored through POST /v1/events (not timed). Then an open-loop
client sends requests at `--rate` per second for `--seconds`: 80% POST /v1/recommend
{user_id, k=10} (the stored history), 20% POST /v1/events (one new event, a third of them
dislikes with a reason), after one uncounted second of the same load. Latency counts from each
request's scheduled send time, so a slow server cannot hide queueing (no coordinated omission);
the client pauses its own garbage collector meanwhile (see `quiet_gc`). Reference, in the same run: the same
recommend calls made in-process on the same `Recommender` (no HTTP), one at a time.

Kill test: a fresh server gets event posts at `--rate` per second; after half of `--kill-after`
seconds' worth it is killed with SIGKILL while requests are in flight; every event the server
acknowledged (HTTP 200) must be in the SQLite file afterwards.

    python -m benchmarks.serving_load [--workdir /tmp/ntr-bench-serve] [--rate 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sqlite3
import tempfile
import time

import httpx
import numpy as np

from benchmarks.common import process_peak_mib, write_section

RECOMMEND_SHARE = 0.8


def ensure_model_and_index(workdir: str, variant: str) -> tuple[str, str]:
    from ntr.cli.main import main  # noqa: PLC0415

    model_dir = os.path.join(workdir, "models", variant)
    index_dir = os.path.join(workdir, "index")
    if not os.path.exists(os.path.join(workdir, "data", "stats.json")):
        assert main(["generate", "--workdir", workdir]) == 0
        assert main(["preprocess", "--workdir", workdir]) == 0
    if not os.path.exists(os.path.join(model_dir, "saved_model")):
        assert main(["train", "--workdir", workdir, "--variant", variant, "--no-progress"]) == 0
    if not os.path.exists(os.path.join(index_dir, "manifest.json")):
        assert main(["index", "--workdir", workdir, "--variant", variant]) == 0
    return model_dir, index_dir


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def open_loop(
    url: str | list[str],
    requests: list[tuple[str, dict]],
    rate: float,
    kill_at: int | None = None,
    process=None,
    headers: dict | None = None,
):
    """Sends `requests` at `rate`/s regardless of responses; returns (latency s, status, body) each.

    With several urls (replicas), request i goes to `url[i % len(url)]`. With `kill_at`, SIGKILLs
    `process` just before request `kill_at` is sent.
    """
    urls = [url] if isinstance(url, str) else url
    results: list = [None] * len(requests)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as client:

        async def send(i: int, path: str, body: dict, scheduled: float) -> None:
            try:
                response = await client.post(urls[i % len(urls)] + path, json=body)
                results[i] = (time.perf_counter() - scheduled, response.status_code, response.json())
            except (httpx.TransportError, ValueError) as err:
                results[i] = (time.perf_counter() - scheduled, None, repr(err))

        start = time.perf_counter()
        tasks = []
        for i, (path, body) in enumerate(requests):
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            if kill_at is not None and i == kill_at:
                os.kill(process.process.pid, signal.SIGKILL)
            tasks.append(asyncio.create_task(send(i, path, body, scheduled)))
        await asyncio.gather(*tasks)
    return results


def quiet_gc(run):
    """Runs `run()` with this process's garbage collector paused.

    The load generator holds TensorFlow's millions of objects (it also times the in-process
    reference); a full collection stalls its event loop for 100+ ms, which would be counted as
    server latency. The server's own GC is left on (it freezes its start-up objects itself).
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return run()
    finally:
        gc.enable()
        gc.unfreeze()


def event_for(model, rng: np.random.Generator, timestamp: int, reasonless: bool = False) -> dict:
    """A third of them dislikes with a reason, the rest watches; with `reasonless`, a dislike
    without a reason (the reason model predicts one)."""
    item = model.item_ids[int(rng.integers(len(model.item_ids)))]
    if reasonless:
        return {"item_id": item, "timestamp": timestamp, "action": "dislike"}
    if rng.random() < 1 / 3:
        reason = ("creator", "topic", "quality")[int(rng.integers(3))]
        return {"item_id": item, "timestamp": timestamp, "action": "dislike", "reason": reason}
    return {
        "item_id": item,
        "timestamp": timestamp,
        "action": "complete",
        "watch_ms": 30_000,
        "duration_ms": 30_000,
    }


def load_run(
    model_dir,
    index_dir,
    users,
    model,
    rate,
    seconds,
    rng,
    flags=(),
    negatives_rate=None,
    auth_on=False,
    replicas=0,
) -> dict:
    """Open-loop load at `rate`/s (80% recommend, 20% event posts); with `negatives_rate`,
    `rate` recommends/s plus `negatives_rate` reasonless dislikes/s instead. With `auth_on`, the
    server checks a service key on every request and applies its default rate limits. With
    `replicas` > 0, that many servers share one PostgreSQL store (pgserver) and take the
    requests in turn."""
    from ntr.serving import auth  # noqa: PLC0415
    from ntr.serving.process import ServerProcess  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp, shared_store(tmp, replicas) as store:
        headers = None
        if auth_on:
            keys = os.path.join(tmp, "keys.json")
            headers = {"Authorization": f"Bearer {auth.add_key(keys, 'bench', 'service')}"}
            flags = (*flags, "--auth-keys", keys)
        servers = [
            ServerProcess(model_dir, index_dir, store, *flags, log_path=os.path.join(tmp, f"serve-{i}.log"))
            for i in range(max(replicas, 1))
        ]
        server = servers[0]
        try:
            # Loaded through the first replica; the others read the same store.
            with httpx.Client(base_url=server.url, timeout=60, headers=headers) as client:
                for user, history in users.items():
                    response = client.post("/v1/events", json={"user_id": user, "events": history})
                    response.raise_for_status()
            names = list(users)
            requests = []
            share = RECOMMEND_SHARE if negatives_rate is None else rate / (rate + negatives_rate)
            total_rate = rate if negatives_rate is None else rate + negatives_rate
            for i in range(int(total_rate * seconds)):
                user = names[int(rng.integers(len(names)))]
                if rng.random() < share:
                    requests.append(("/v1/recommend", {"user_id": user, "k": 10}))
                else:
                    event = event_for(model, rng, 2_000_000_000 + i, reasonless=negatives_rate is not None)
                    requests.append(("/v1/events", {"user_id": user, "events": [event]}))
            rate = total_rate
            # One second of the same load first opens the client's connections; not counted.
            warm = int(rate)
            start = time.perf_counter()
            urls = [s.url for s in servers]
            results = quiet_gc(
                lambda: asyncio.run(open_loop(urls, requests[:warm] + requests, rate, headers=headers))
            )[warm:]
            wall = time.perf_counter() - start - warm / rate
        finally:
            peaks = [process_peak_mib(s.process.pid) for s in servers]
            graceful = all([s.stop_gracefully() for s in servers])
    latency = {
        path: [r[0] * 1000 for (p, _), r in zip(requests, results, strict=True) if p == path and r[1] == 200]
        for path in ("/v1/recommend", "/v1/events")
    }
    predicted = sum(
        len(r[2].get("predicted_reasons", []))
        for (p, _), r in zip(requests, results, strict=True)
        if p == "/v1/events" and r[1] == 200
    )
    errors = sum(1 for r in results if r[1] != 200)
    return {
        "latency_ms": latency,
        "errors": errors,
        "sent": len(requests),
        "wall": wall,
        "graceful": graceful,
        "predicted": predicted,
        "server_peak_mib": max((p for p in peaks if p is not None), default=None),
    }


def in_process_reference(model, index, users, repeats: int) -> list[float]:
    from ntr.serving.recommender import Recommender  # noqa: PLC0415

    recommender = Recommender(model, index)
    histories = list(users.values())
    recommender.recommend(histories[0], 10)  # warm-up (traces the SavedModel call)
    out = []
    for i in range(repeats):
        start = time.perf_counter()
        recommender.recommend(histories[i % len(histories)], 10)
        out.append((time.perf_counter() - start) * 1000)
    return out


def kill_run(model_dir, index_dir, model, rate, kill_after, rng, postgres=False) -> dict:
    from ntr.serving.process import ServerProcess  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp, shared_store(tmp, 1 if postgres else 0) as db:
        server = ServerProcess(model_dir, index_dir, db, log_path=os.path.join(tmp, "serve.log"))
        total = int(rate * kill_after)
        requests = [
            ("/v1/events", {"user_id": f"k{i}", "events": [event_for(model, rng, 2_000_000_000 + i)]})
            for i in range(total)
        ]
        results = quiet_gc(
            lambda: asyncio.run(open_loop(server.url, requests, rate, kill_at=total // 2, process=server))
        )
        server.stop(signal.SIGKILL)
        acknowledged = {f"k{i}" for i, r in enumerate(results) if r[1] == 200}
        stored = stored_users(db)
    return {
        "sent": total,
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "lost": len(acknowledged - stored),
        "stored_unacknowledged": len(stored - acknowledged),
    }


@contextlib.contextmanager
def shared_store(tmp: str, replicas: int):
    """The store's location: a SQLite file in `tmp`, or with `replicas` > 0 the URL of a real
    PostgreSQL (pgserver's bundled server) in `tmp`, stopped afterwards."""
    if replicas == 0:
        yield os.path.join(tmp, "events.sqlite")
        return
    import pgserver  # noqa: PLC0415

    server = pgserver.get_server(os.path.join(tmp, "pg"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def stored_users(db: str) -> set[str]:
    if "://" in db:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(db) as handle:
            return {row[0] for row in handle.execute("SELECT user_id FROM events")}
    with sqlite3.connect(db) as handle:
        return {row[0] for row in handle.execute("SELECT user_id FROM events")}


def latency_row(what: str, latencies: list[float], reference: list[float] | None = None) -> str:
    """`| what | p50 | p99 | requests |`, and with `reference` a last column: p50 as a ratio to
    the reference's (empty for an empty reference)."""
    row = f"| {what} | {percentile(latencies, 50):.2f} | {percentile(latencies, 99):.2f} | {len(latencies)} |"
    if reference is None:
        return row
    return row + (f" {percentile(latencies, 50) / percentile(reference, 50):.2f} |" if reference else " |")


def replica_lines(replicated: dict, kill: dict, args) -> list[str]:
    """The arm with two replicas over one PostgreSQL store, same load in total."""
    rec, ev = replicated["latency_ms"]["/v1/recommend"], replicated["latency_ms"]["/v1/events"]
    return [
        f"Two replicas over one PostgreSQL store (`ntr serve --db postgresql://...`, PostgreSQL 16 from "
        f"pgserver on the same machine, Unix socket): the same {args.rate:.0f} requests/s in total, taken in "
        f"turn ({replicated['errors']} errors of {replicated['sent']} sent; graceful shutdown "
        f"{'clean' if replicated['graceful'] else 'NOT clean'}). Client, both replicas and the database share "
        "the 2 cores.\n",
        "| what | p50 ms | p99 ms | requests |",
        "|---|---|---|---|",
        latency_row("HTTP POST /v1/recommend, 2 replicas, PostgreSQL", rec),
        latency_row("HTTP POST /v1/events, 2 replicas, PostgreSQL", ev),
        "",
        f"Kill -9 of a replica on PostgreSQL mid-load ({args.rate:.0f} event posts/s, SIGKILL after "
        f"{kill['sent'] // 2} were sent): {kill['acknowledged']} acknowledged, {kill['stored']} stored, "
        f"**{kill['lost']} acknowledged events lost**, {kill['stored_unacknowledged']} stored whose reply never "
        "arrived.\n",
    ]


def reasons_lines(arm: dict, args) -> list[str]:
    """The online-reasons arm's rows: every event post is a dislike without a reason."""
    rec, ev = arm["latency_ms"]["/v1/recommend"], arm["latency_ms"]["/v1/events"]
    return [
        f"With reason prediction (`ntr serve --reasons`; torch on 1 thread, prediction off the event loop): "
        f"{args.rate:.0f} recommend/s plus {args.negatives_rate:.0f} dislikes/s posted without a reason, each "
        f"given a predicted reason ({arm['predicted']} predicted; {arm['errors']} errors of {arm['sent']} sent; "
        f"graceful shutdown {'clean' if arm['graceful'] else 'NOT clean'}). Targets: events p99 < 50 ms, "
        "recommend p99 < 25 ms.\n",
        "| what | p50 ms | p99 ms | requests |",
        "|---|---|---|---|",
        latency_row("HTTP POST /v1/recommend, alongside", rec),
        latency_row("HTTP POST /v1/events, reason predicted", ev),
        "",
    ]


def auth_rows(secured: dict, reference: list[float]) -> list[str]:
    """Table rows for the arm with a service key checked and rate limits on (same load)."""
    rec, ev = secured["latency_ms"]["/v1/recommend"], secured["latency_ms"]["/v1/events"]
    return [
        latency_row("HTTP POST /v1/recommend, auth + rate limits on", rec, reference),
        latency_row("HTTP POST /v1/events, auth + rate limits on", ev, []),
        f"| (auth arm: {secured['errors']} errors of {secured['sent']} sent; graceful shutdown "
        f"{'clean' if secured['graceful'] else 'NOT clean'}) | | | | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/ntr-bench-serve", help="world workdir (made if missing)")
    parser.add_argument("--variant", default="ntr", help="model variant to serve")
    parser.add_argument("--rate", type=float, default=200, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30, help="load duration")
    parser.add_argument("--users", type=int, default=500, help="validation histories used as users")
    parser.add_argument(
        "--kill-after", type=float, default=10, help="seconds of event posts in the kill test"
    )
    parser.add_argument("--seed", type=int, default=0, help="request mix seed")
    parser.add_argument("--section", default="serving_load", help="BENCHMARKS.md section to write")
    parser.add_argument(
        "--reasons",
        help="reason model for the online-reasons arm (default WORKDIR/reasons, trained if missing)",
    )
    parser.add_argument(
        "--no-auth-arm", action="store_true", help="skip the arm with authentication and rate limits on"
    )
    parser.add_argument(
        "--replicas-arm",
        action="store_true",
        help="add the arm with two replicas over one PostgreSQL store (and its kill test)",
    )
    parser.add_argument("--json", help="also write the main arm's figures to this JSON file")
    parser.add_argument(
        "--negatives-rate",
        type=float,
        default=50,
        help="online-reasons arm: reasonless dislikes/s (0: no arm)",
    )
    args = parser.parse_args()
    from ntr.retrieval.data import read_histories  # noqa: PLC0415
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.serving.index import load_index  # noqa: PLC0415

    model_dir, index_dir = ensure_model_and_index(args.workdir, args.variant)
    model = ExportedModel(model_dir)
    index, manifest = load_index(index_dir, model.export)
    histories = read_histories(os.path.join(args.workdir, "data"), "valid", args.users)
    users = {
        f"u{i}": [{k: v for k, v in e.items() if v is not None} for e in h] for i, h in enumerate(histories)
    }
    rng = np.random.default_rng(args.seed)
    reference = in_process_reference(model, index, users, 2000)
    load = load_run(model_dir, index_dir, users, model, args.rate, args.seconds, rng)
    secured = None
    if not args.no_auth_arm:
        secured = load_run(model_dir, index_dir, users, model, args.rate, args.seconds, rng, auth_on=True)
    kill = kill_run(model_dir, index_dir, model, args.rate, args.kill_after, rng)
    replicated = replicated_kill = None
    if args.replicas_arm:
        replicated = load_run(model_dir, index_dir, users, model, args.rate, args.seconds, rng, replicas=2)
        replicated_kill = kill_run(
            model_dir, index_dir, model, args.rate, args.kill_after, rng, postgres=True
        )
    arm = None
    if args.negatives_rate > 0:
        reasons_dir = args.reasons or os.path.join(args.workdir, "reasons")
        if not os.path.exists(os.path.join(reasons_dir, "model.pt")):
            from ntr.cli.main import main as ntr_main  # noqa: PLC0415

            assert ntr_main(["reasons", "train", "--workdir", args.workdir, "--model-dir", reasons_dir]) == 0
        flags = ("--reasons", reasons_dir, "--items", os.path.join(args.workdir, "raw", "items.jsonl"))
        arm = load_run(
            model_dir, index_dir, users, model, args.rate, args.seconds, rng, flags, args.negatives_rate
        )
    rec, ev = load["latency_ms"]["/v1/recommend"], load["latency_ms"]["/v1/events"]
    done = len(rec) + len(ev)
    body = "\n".join(
        [
            f"World of `{args.workdir}`, variant `{args.variant}` ({len(model.item_ids):,} items, index `{manifest['config']['kind']}`), "
            f"{len(users)} users with stored validation histories; open loop at {args.rate:.0f} requests/s for "
            f"{args.seconds:.0f} s ({RECOMMEND_SHARE:.0%} recommend k=10, the rest single-event posts); latency from the "
            "scheduled send time, after 1 s of uncounted warm-up load. Client and server share the machine's 2 cores; "
            "the server runs uvicorn with httptools + uvloop, async handlers, access log off.\n",
            "| what | p50 ms | p99 ms | requests | ratio p50 to in-process |",
            "|---|---|---|---|---|",
            latency_row("in-process `Recommender.recommend` (reference, no HTTP)", reference, reference),
            latency_row("HTTP POST /v1/recommend", rec, reference),
            latency_row("HTTP POST /v1/events", ev, []),
            *(auth_rows(secured, reference) if secured else []),
            "",
            f"Throughput: {done / load['wall']:.1f} successful requests/s of {args.rate:.0f} offered "
            f"({load['errors']} errors of {load['sent']} sent). Graceful shutdown after the load: "
            f"{'clean' if load['graceful'] else 'NOT clean'}. Server peak resident memory: "
            + (f"{load['server_peak_mib']:,.0f} MiB" if load["server_peak_mib"] else "n/a")
            + ".\n",
            *(reasons_lines(arm, args) if arm else []),
            f"Kill -9 mid-load ({args.rate:.0f} event posts/s, SIGKILL after {kill['sent'] // 2} were sent): "
            f"{kill['acknowledged']} acknowledged, {kill['stored']} stored, **{kill['lost']} acknowledged events lost**, "
            f"{kill['stored_unacknowledged']} stored whose reply never arrived (committed, killed before replying).",
            *(["", *replica_lines(replicated, replicated_kill, args)] if replicated else []),
        ]
    )
    title = "Recommendation service under load" + (
        "" if args.section == "serving_load" else f" ({args.section})"
    )
    write_section(args.section, title, body)
    print(body)
    if args.json:
        summary = {
            "recommend_p50_ms": percentile(rec, 50),
            "recommend_p99_ms": percentile(rec, 99),
            "events_p99_ms": percentile(ev, 99),
            "errors": load["errors"],
            "sent": load["sent"],
            "rate": args.rate,
            "server_peak_mib": load["server_peak_mib"],
        }
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
