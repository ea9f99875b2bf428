"""`ntr serve`: the HTTP recommendation service over a trained variant and its index."""

from __future__ import annotations

import argparse
import os

from ntr.cli.auth import ENV_KEYS
from ntr.retrieval.config import VARIANTS
from ntr.serving.store import describe

# The event store's location (a postgresql:// URL may carry a password: kept out of argv).
ENV_DB = "NTR_DB"

HELP = (
    "Serve recommendations over HTTP (FastAPI + uvicorn, 127.0.0.1 by default): POST /v1/recommend, "
    "POST /v1/events (SQLite store, or PostgreSQL shared by replicas; a dislike changes the next "
    "response), GET /healthz, GET /v1/model, "
    "OpenAPI schema at /docs and /openapi.json."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        help="trained variant (default: the one the index was built from)",
    )
    parser.add_argument("--model-dir", help="exported model (default WORKDIR/models/<variant>)")
    parser.add_argument("--index-dir", help="ScaNN index (default WORKDIR/index)")
    parser.add_argument(
        "--brute-force", action="store_true", help="exact NumPy search over the embeddings, no index needed"
    )
    parser.add_argument(
        "--db",
        help="event store: a SQLite file, or a postgresql:// URL that several replicas share "
        f"(default ${ENV_DB}, else WORKDIR/events.sqlite; a URL with a password belongs in ${ENV_DB}, "
        "not on the command line where `ps` shows it)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind; beyond loopback it needs --auth-keys and --allowed-host",
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument("--max-k", type=int, default=100, help="largest k a request may ask for")
    parser.add_argument("--max-history", type=int, default=1000, help="most events per recommend request")
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000, help="larger bodies get 413")
    parser.add_argument(
        "--synchronous",
        default="NORMAL",
        choices=("NORMAL", "FULL"),
        help="SQLite durability (FULL: power loss too)",
    )
    parser.add_argument(
        "--keep-consumed", action="store_true", help="do not filter items already in the history"
    )
    parser.add_argument(
        "--reasons",
        metavar="DIR",
        help="reason model (`ntr reasons train`, e.g. WORKDIR/reasons): negatives posted without a reason "
        "get a predicted one",
    )
    parser.add_argument("--items", help="catalogue for the reason model (default WORKDIR/raw/items.jsonl)")
    parser.add_argument(
        "--label-skips", action="store_true", help="with --reasons: predict reasons for skips too"
    )
    parser.add_argument(
        "--reason-threshold",
        type=float,
        help="with --reasons: probability a predicted creator/category reason needs to remove the whole "
        "group (default: the one chosen on validation users at training)",
    )
    parser.add_argument(
        "--auth-keys",
        metavar="FILE",
        help=f"keys file (`ntr auth add-key`; default ${ENV_KEYS}): every /v1 call then needs a key or "
        "user token. Without it every caller may read and write every user, so only loopback is allowed",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve beyond loopback WITHOUT authentication (anyone reaching the port acts as any user)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="Host header a client may send (repeatable; default on loopback: 127.0.0.1, localhost, ::1)",
    )
    parser.add_argument(
        "--token-rate",
        default="1000/s,burst=2000",
        help="rate limit per credential, in requests (N/s[,burst=M])",
    )
    parser.add_argument(
        "--user-rate",
        default="100/s,burst=1000",
        help="rate limit per user_id: a recommend costs 1, each posted event 1",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn log level (info logs every request; warning does not)",
    )


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ntr.serving.index import read_manifest  # noqa: PLC0415
    from ntr.serving.ratelimit import Rate  # noqa: PLC0415
    from ntr.serving.recommender import RecommenderConfig  # noqa: PLC0415
    from ntr.serving.schemas import ServiceLimits  # noqa: PLC0415
    from ntr.serving.server import ServiceConfig, serve  # noqa: PLC0415

    index_dir = None if args.brute_force else (args.index_dir or os.path.join(args.workdir, "index"))
    variant = args.variant
    if variant is None:
        variant = read_manifest(index_dir)["model"]["variant"] if index_dir else "ntr"
    limits = ServiceLimits(
        max_k=args.max_k,
        max_history=args.max_history,
        max_body_bytes=args.max_body_bytes,
        token_rate=Rate.parse(args.token_rate),
        user_rate=Rate.parse(args.user_rate),
    )
    if min(limits.max_k, limits.max_history, limits.max_body_bytes) < 1:
        raise ValueError("--max-k, --max-history and --max-body-bytes must be >= 1.")
    if args.reasons is None and (args.label_skips or args.reason_threshold is not None):
        raise ValueError("--label-skips and --reason-threshold need --reasons DIR (a trained reason model).")
    config = ServiceConfig(
        model_dir=args.model_dir or os.path.join(args.workdir, "models", variant),
        index_dir=index_dir,
        store=args.db or os.environ.get(ENV_DB) or os.path.join(args.workdir, "events.sqlite"),
        synchronous=args.synchronous,
        limits=limits,
        recommender=RecommenderConfig(exclude_consumed=not args.keep_consumed),
        reasons_dir=args.reasons,
        items_path=(args.items or os.path.join(args.workdir, "raw", "items.jsonl")) if args.reasons else None,
        label_skips=args.label_skips,
        reason_threshold=args.reason_threshold,
        host=args.host,
        port=args.port,
        auth_keys=args.auth_keys or os.environ.get(ENV_KEYS) or None,
        insecure_no_auth=args.insecure_no_auth,
        allowed_hosts=tuple(args.allowed_host),
    )
    print(f"ntr serve: variant {variant}, http://{args.host}:{args.port} (docs at /docs)", flush=True)
    print(f"ntr serve: events in {describe(config.store)}", flush=True)
    if config.auth_keys:
        print(f"ntr serve: auth on, keys from {config.auth_keys}", flush=True)
    elif args.insecure_no_auth:
        print(
            "ntr serve: WARNING: AUTHENTICATION IS OFF and the service is bound beyond loopback: anyone "
            "who reaches this port can read and write every user's history (--insecure-no-auth).",
            flush=True,
        )
    else:
        print("ntr serve: auth off (loopback only): every local caller may act for every user", flush=True)
    serve(config, log_level=args.log_level)
    return 0
