"""Assembles the service from a working directory and runs it under uvicorn.

Shutdown is graceful: on SIGINT/SIGTERM uvicorn stops accepting connections, finishes the
requests in flight, then the store is closed (and uvicorn re-raises the signal, so the exit
status says which signal stopped it). Events are committed before their request is
acknowledged, so even a kill -9 loses none that were acknowledged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import ipaddress

from ntr.retrieval.exported import ExportedModel
from ntr.serving.auth import Authenticator
from ntr.serving.index import load_index
from ntr.serving.recommender import Recommender, RecommenderConfig
from ntr.serving.schemas import ServiceLimits
from ntr.serving.store import describe, open_store
from ntr.serving.topk import BruteForce


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """Everything `ntr serve` needs.

    Attributes:
      model_dir: the exported model (models/<variant>).
      index_dir: a ScaNN index built from that model, or None for exact brute force.
      store: the event store: a SQLite file (one replica), or a `postgresql://` URL that
        several replicas share.
      synchronous: SQLite's durability, "NORMAL" (survives a process kill) or "FULL" (also power
        loss); PostgreSQL takes its server's setting (NORMAL only).
      limits: request limits.
      recommender: candidate and filter settings.
      reasons_dir: a reason model (`ntr reasons train`) that fills in missing reasons of posted
        negatives, or None.
      items_path: the catalogue the reason model describes items from (items.jsonl).
      label_skips: also predict reasons for skips.
      reason_threshold: the confidence a predicted reason needs to remove a whole creator or
        category; None takes the one chosen on validation users at training.
      host: the interface to bind; beyond loopback it needs `auth_keys` (or
        `insecure_no_auth`) and `allowed_hosts`.
      port: the TCP port.
      auth_keys: the keys file (`ntr auth add-key`); None: no authentication (every caller may
        read and write every user), allowed on loopback only.
      insecure_no_auth: serve beyond loopback without authentication anyway.
      allowed_hosts: the Host header names answered; empty: the loopback names on loopback.
    """

    model_dir: str
    index_dir: str | None
    store: str
    synchronous: str = "NORMAL"
    limits: ServiceLimits = dataclasses.field(default_factory=ServiceLimits)
    recommender: RecommenderConfig = dataclasses.field(default_factory=RecommenderConfig)
    reasons_dir: str | None = None
    items_path: str | None = None
    label_skips: bool = False
    reason_threshold: float | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    auth_keys: str | None = None
    insecure_no_auth: bool = False
    allowed_hosts: tuple[str, ...] = ()


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access(config: ServiceConfig) -> tuple[Authenticator | None, tuple[str, ...]]:
    """(the Authenticator or None, the Host names answered) for `config`, or ValueError when
    the service would be reachable beyond loopback without authentication or a host list."""
    auth = Authenticator.from_file(config.auth_keys) if config.auth_keys else None
    if is_loopback(config.host):
        return auth, config.allowed_hosts or LOOPBACK_NAMES
    if auth is None and not config.insecure_no_auth:
        raise ValueError(
            f"refusing to bind {config.host} without authentication: anyone who reaches the port could "
            "read and write every user's history. Give --auth-keys FILE (make one with `ntr auth "
            "add-key`), or bind 127.0.0.1, or pass --insecure-no-auth if this network is yours alone."
        )
    if not config.allowed_hosts:
        raise ValueError(
            f"binding {config.host} needs the host names clients use: --allowed-host NAME (repeatable; "
            "other Host headers get 400)."
        )
    return auth, config.allowed_hosts


def warm_up(recommender: Recommender) -> None:
    """Runs a few requests before serving: a loaded SavedModel's first calls take seconds
    (graph optimisation), which would otherwise stall the first users' requests."""
    item = recommender.model.item_ids[0]
    for length in (1, 8, recommender.model.max_len):
        history = [
            {"item_id": item, "timestamp": t + 1, "action": "view", "watch_ms": 1000} for t in range(length)
        ]
        recommender.recommend(history, 1)


def build_app(config: ServiceConfig):
    """The FastAPI app and its store (closed when the app shuts down)."""
    from ntr.serving.api import create_app  # noqa: PLC0415 (FastAPI only when serving)

    # Checked first: a refused exposure should not wait for the model to load.
    auth, allowed_hosts = access(config)
    model = ExportedModel(config.model_dir)
    if config.index_dir is None:
        index, info = BruteForce(model.embeddings), {"kind": "brute_force (numpy, no index)"}
    else:
        index, manifest = load_index(config.index_dir, model.export)
        info = {
            "kind": manifest["config"]["kind"],
            "recall": manifest["recall"]["measured"],
            "recall_k": manifest["recall"]["k"],
            "search": manifest["search"],
            "created": manifest.get("created"),
        }
    store = open_store(config.store, config.synchronous)
    reasons, recommender_config = None, config.recommender
    if config.reasons_dir is not None:
        from ntr.reasons.data import load_items  # noqa: PLC0415
        from ntr.serving.reasons import OnlineReasons  # noqa: PLC0415 (torch)

        if config.items_path is None:
            raise ValueError("serving a reason model needs the catalogue: set items_path (--items).")
        reasons = OnlineReasons(config.reasons_dir, load_items(config.items_path), config.label_skips)
        threshold = reasons.threshold if config.reason_threshold is None else config.reason_threshold
        recommender_config = dataclasses.replace(recommender_config, predicted_threshold=threshold)
        reasons.warm_up()
    recommender = Recommender(model, index, recommender_config)
    warm_up(recommender)
    # TensorFlow leaves millions of long-lived Python objects; a full GC pass over them stalls
    # requests for 100+ ms. Freezing moves them out of the collector's sight.
    gc.collect()
    gc.freeze()
    app = create_app(recommender, store, config.limits, info, reasons, auth, allowed_hosts)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        # Runs after uvicorn has finished the requests in flight (graceful shutdown).
        print(f"ntr serve: shut down cleanly; {store.count()} events in {describe(config.store)}", flush=True)
        store.close()

    app.router.lifespan_context = lifespan
    return app, store


def serve(config: ServiceConfig, log_level: str = "info") -> None:
    """Runs the service until SIGINT/SIGTERM."""
    import uvicorn  # noqa: PLC0415

    app, _ = build_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, timeout_graceful_shutdown=10)
