"""The HTTP service: FastAPI app over a `Recommender` and an `EventStore`.

    POST /v1/recommend  user_id and/or history, k, filters -> top k (stored history + sent history)
    POST /v1/events     append events for a user; the next recommend for that user sees them
                        (with a reason model: negatives without a reason get a predicted one)
    GET  /healthz       the store answers
    GET  /v1/model      model and index versions, measured recall, limits

Bad input gets a 4xx with a message: 422 for invalid bodies (malformed JSON, unknown action
or reason, over-long history, k out of range), 413 for bodies over the size limit.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime,
# and the request models are local to create_app.
import json

from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi_offline import FastAPIOffline

from ntr.pipelines.events import REASON_GRANULARITY, Granularity
from ntr.serving.recommender import Filters, Recommender
from ntr.serving.schemas import (
    EventsResponse,
    Health,
    ModelInfo,
    PredictedReason,
    RecommendResponse,
    ServiceLimits,
    request_models,
)
from ntr.serving.store import STATED, EventStore


class BodyLimit:
    """ASGI middleware: answers 413 to request bodies over `max_bytes`, declared or streamed."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        # Read the body up front (bounded), then replay it to the app.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks)}], receive), send)

    async def _too_large(self, send):
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes; send less per request"})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


def _replay(messages: list[dict], then=None):
    async def receive():
        if messages:
            return messages.pop(0)
        if then is not None:
            return await then()  # e.g. http.disconnect after the body
        return {"type": "http.disconnect"}

    return receive


def _acts_on(prediction: dict, threshold: float) -> PredictedReason:
    """What a predicted reason makes the Recommender drop, and why."""
    granularity = REASON_GRANULARITY.get(prediction["reason"], Granularity.ITEM)
    if granularity is Granularity.ITEM:
        acts_on, why = "item", f"{prediction['reason']!r} is an item-level reason"
    elif prediction["confidence"] >= threshold:
        acts_on = granularity.value
        why = f"p={prediction['confidence']:.2f} >= threshold {threshold:.2f}: the whole {acts_on} is removed"
    else:
        acts_on = "item"
        why = f"p={prediction['confidence']:.2f} < threshold {threshold:.2f}: only the item is removed"
    return PredictedReason(**prediction, acts_on=acts_on, why=why)


def create_app(
    recommender: Recommender,
    store: EventStore,
    limits: ServiceLimits | None = None,
    index_info: dict | None = None,
    reasons=None,
) -> FastAPI:
    """The service app.

    Args:
      recommender: answers recommend requests.
      store: per-user histories; events posted here are read by the next recommend.
      limits: request limits (defaults: `ServiceLimits()`).
      index_info: what /v1/model says about the index (kind, measured recall, ...).
      reasons: an `OnlineReasons` that fills in missing reasons of posted negatives, or None.
    """
    limits = limits or ServiceLimits()
    recommend_request, events_request = request_models(limits)
    model = recommender.model
    # /docs and /redoc from assets in the installed fastapi-offline package: FastAPI's own pages
    # load Swagger UI from a CDN, and nothing may be downloaded at run time.
    app = FastAPIOffline(
        title="ntr recommendation service",
        version="0.1.0",
        description="Sequential retrieval that reacts to a dislike at once.",
    )

    @app.get("/healthz", response_model=Health)
    def healthz():
        if not store.ping():
            raise HTTPException(503, "the event store does not answer")
        return Health(status="ok", events_stored=store.count())

    @app.get("/v1/model", response_model=ModelInfo)
    def model_info():
        return ModelInfo(
            variant=model.variant,
            fingerprint=model.fingerprint,
            vocab_hash=model.export["vocab_hash"],
            num_items=len(model.item_ids),
            dim=model.export["dim"],
            index=index_info or {},
            limits=limits.__dict__,
            reasons=reasons.info() if reasons is not None else None,
        )

    # `async` handlers that call the model directly: a request holds the GIL for nearly all of its
    # ~2 ms anyway, so FastAPI's thread pool adds hand-offs and tail latency but no parallelism
    # (benchmarks/serving_load.py; scale out with more processes, not threads).
    @app.post("/v1/events", response_model=EventsResponse)
    async def post_events(request: events_request):
        events = [event.model_dump() for event in request.events]
        for event in events:
            if event.get("reason"):
                event["reason_source"] = STATED
        predicted = []
        if reasons is not None and any(reasons.wants(e) for e in events):
            history = store.history(request.user_id, limit=reasons.history_len)
            # MiniLM takes ~10 ms and releases the GIL: off the event loop, recommend requests
            # keep being answered on the other core meanwhile.
            predicted = await run_in_threadpool(reasons.fill, history, events)
        # Stored (and committed) before the answer: an acknowledged event survives a kill.
        store.append(request.user_id, events)
        unknown = sorted({e["item_id"] for e in events if e["item_id"] not in model.item_index})
        return EventsResponse(
            user_id=request.user_id,
            accepted=len(events),
            unknown_items=unknown,
            predicted_reasons=[_acts_on(p, recommender.config.predicted_threshold) for p in predicted],
        )

    @app.post("/v1/recommend", response_model=RecommendResponse, response_model_exclude_none=True)
    async def recommend(request: recommend_request):
        if request.k > len(model.item_ids):
            raise HTTPException(
                422, f"k={request.k} is more than the catalogue's {len(model.item_ids)} items"
            )
        stored = store.history(request.user_id, limit=limits.max_history) if request.user_id else []
        history = stored + [event.model_dump() for event in request.history]
        f = request.filters
        filters = (
            Filters(
                frozenset(f.exclude_items), frozenset(f.exclude_creators), frozenset(f.exclude_categories)
            )
            if f
            else None
        )
        result = recommender.recommend(history, request.k, filters)
        return RecommendResponse(
            user_id=request.user_id,
            items=result.items,
            ignored_items=sorted(set(result.ignored_items)),
            cold_start=result.cold_start,
            history_length=len(history),
            filtered=result.filtered if request.debug else None,
        )

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    return app
