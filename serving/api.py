"""The HTTP service: FastAPI app over a `Recommender` and an `EventStore`.

    POST /v1/recommend  user_id and/or history, k, filters -> top k (stored history + sent history)
    POST /v1/events     append events for a user; the next recommend for that user sees them
                        (with a reason model: negatives without a reason get a predicted one)
    GET  /healthz       the store answers (the event count only for an admin)
    GET  /v1/model      model and index versions, measured recall, limits

Who may do what (`serving/auth.py`; with an `Authenticator`): every /v1 call needs a bearer
credential (401 without a valid one); a user's history is read or written only by an admin or
service key or that user's own key or token (403 otherwise); `debug` output needs admin.
Without an `Authenticator` every caller may do everything: `serve()` allows that on loopback
only. Rate limits per credential and per user answer 429 with Retry-After.

Bad input gets a 4xx with a message: 422 for invalid bodies (malformed JSON, wrong JSON types,
unknown action or reason, over-long history, k out of range, text that is not Unicode), 413 for
bodies over the size limit. A 422 names where and what, never echoes the value it refused.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime,
# and the request models are local to create_app.
import dataclasses
import json
import time
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ntr.pipelines.events import REASON_GRANULARITY, Granularity
from ntr.serving.auth import Authenticator, Principal
from ntr.serving.ratelimit import RateLimiter, retry_after
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
from ntr.serving.store import STATED, EventStore, StoreUnavailable

# The caller when the service runs without an Authenticator (loopback only, see serve()).
ANYONE = Principal("anyone (auth off)", "admin")


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


def _printable(value) -> str | int:
    """A location part or message as JSON can always carry it (lone surrogates escaped)."""
    if isinstance(value, int):
        return value
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
    # FastAPI's own handler echoes each refused value; NaN, Infinity or a lone surrogate there
    # cannot be serialised and turned a 422 into a 500. Where and what, never the value.
    detail = [
        {
            "loc": [_printable(part) for part in e.get("loc", ())],
            "msg": _printable(e.get("msg", "")),
            "type": _printable(e.get("type", "")),
        }
        for e in error.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


async def _store_unavailable(_request: Request, error: StoreUnavailable) -> JSONResponse:
    # Nothing of the call was stored: a client retries (with its event_id, safely) shortly.
    return JSONResponse(status_code=503, content={"detail": str(error)}, headers={"Retry-After": "1"})


def create_app(
    recommender: Recommender,
    store: EventStore,
    limits: ServiceLimits | None = None,
    index_info: dict | None = None,
    reasons=None,
    auth: Authenticator | None = None,
    allowed_hosts: tuple[str, ...] | None = None,
) -> FastAPI:
    """The service app.

    Args:
      recommender: answers recommend requests.
      store: per-user histories; events posted here are read by the next recommend.
      limits: request and rate limits (defaults: `ServiceLimits()`).
      index_info: what /v1/model says about the index (kind, measured recall, ...).
      reasons: an `OnlineReasons` that fills in missing reasons of posted negatives, or None.
      auth: checks credentials; None lets every caller act for every user (loopback only).
      allowed_hosts: the Host header values answered (400 for others: DNS rebinding, a foreign
        name pointed at this address); None answers any.
    """
    limits = limits or ServiceLimits()
    recommend_request, events_request = request_models(limits)
    token_limiter, user_limiter = RateLimiter(limits.token_rate), RateLimiter(limits.user_rate)
    bearer = HTTPBearer(auto_error=False, description="an ntr API key (ntr_...) or a user token")

    def caller(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        if auth is None:
            return ANYONE
        if credentials is None:
            raise HTTPException(
                401,
                "send `Authorization: Bearer <key or token>` (make a key with `ntr auth add-key`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = auth.authenticate(credentials.credentials)
        if principal is None:
            raise HTTPException(
                401, "unknown key or invalid/expired token", headers={"WWW-Authenticate": "Bearer"}
            )
        return principal

    def admit(principal: Principal, user_id: str | None, cost: int) -> None:
        """403 when `principal` may not act for `user_id`, 429 when a rate limit is spent."""
        if user_id is not None and not principal.may_act_for(user_id):
            raise HTTPException(403, f"credential {principal.name!r} may act for its own user only")
        now = time.monotonic()
        # Per credential, requests count (a backend posts many users' events); per user, events.
        wait = token_limiter.charge(principal.name, 1, now)
        if user_id is not None:
            wait = wait or user_limiter.charge(user_id, cost, now)
        if wait:
            raise HTTPException(
                429,
                "rate limit reached; retry after the given seconds",
                headers={"Retry-After": retry_after(wait)},
            )

    model = recommender.model
    # /docs and /redoc from assets in the installed fastapi-offline package: FastAPI's own pages
    # load Swagger UI from a CDN, and nothing may be downloaded at run time.
    app = FastAPIOffline(
        title="ntr recommendation service",
        version="0.1.0",
        description="Sequential retrieval that reacts to a dislike at once.",
    )

    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    optional_bearer = HTTPBearer(auto_error=False)

    @app.get("/healthz", response_model=Health, response_model_exclude_none=True)
    def healthz(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(optional_bearer)]):
        if not store.ping():
            raise HTTPException(503, "the event store does not answer")
        # Open to load balancers; how much the service holds is for an admin to know.
        principal = ANYONE if auth is None else credentials and auth.authenticate(credentials.credentials)
        return Health(status="ok", events_stored=store.count() if principal and principal.is_admin else None)

    @app.get("/v1/model", response_model=ModelInfo)
    def model_info(principal: Annotated[Principal, Depends(caller)]):
        admit(principal, None, 1)
        return ModelInfo(
            variant=model.variant,
            fingerprint=model.fingerprint,
            vocab_hash=model.export["vocab_hash"],
            num_items=len(model.item_ids),
            dim=model.export["dim"],
            index=index_info or {},
            limits=dataclasses.asdict(limits),
            reasons=reasons.info() if reasons is not None else None,
        )

    # `async` handlers that call the model directly: a request holds the GIL for nearly all of its
    # ~2 ms anyway, so FastAPI's thread pool adds hand-offs and tail latency but no parallelism
    # (benchmarks/serving_load.py; scale out with more processes, not threads).
    @app.post("/v1/events", response_model=EventsResponse)
    async def post_events(request: events_request, principal: Annotated[Principal, Depends(caller)]):
        admit(principal, request.user_id, len(request.events))
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
        stored = store.append(request.user_id, events)
        unknown = sorted({e["item_id"] for e in events if e["item_id"] not in model.item_index})
        return EventsResponse(
            user_id=request.user_id,
            accepted=len(events),
            duplicates=len(events) - stored,
            unknown_items=unknown,
            predicted_reasons=[_acts_on(p, recommender.config.predicted_threshold) for p in predicted],
        )

    @app.post("/v1/recommend", response_model=RecommendResponse, response_model_exclude_none=True)
    async def recommend(request: recommend_request, principal: Annotated[Principal, Depends(caller)]):
        if request.debug and not principal.is_admin:
            raise HTTPException(403, "debug output (why candidates were filtered) needs an admin key")
        admit(principal, request.user_id, 1)
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
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app
