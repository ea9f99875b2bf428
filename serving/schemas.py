"""Request and response bodies of the HTTP service (pydantic; they make the OpenAPI schema).

Limits (history length, k, events per request) come from `ServiceLimits` at app creation,
so the request models are built by `request_models(limits)`.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from ntr.pipelines.events import ACTIONS, MAX_TIMESTAMP, REASONS
from ntr.serving.ratelimit import Rate

Action = Literal[ACTIONS]
Reason = Literal[REASONS]


def _utf8(text: str) -> str:
    # A lone surrogate ("\ud800") is a valid Python str but no UTF-8: SQLite and the JSON
    # response could not take it, so it is refused here, as a 422. PostgreSQL's text cannot
    # hold a NUL character either; refused in every store, so both stores accept the same ids.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from error
    if "\x00" in text:
        raise ValueError("must not contain the NUL character")
    return text


Text = Annotated[str, AfterValidator(_utf8)]
_ID = Field(min_length=1, max_length=256)
# Request bodies take JSON types exactly: no bool or string for a number, no number for a bool.
_STRICT = ConfigDict(extra="forbid", strict=True)


@dataclasses.dataclass(frozen=True)
class ServiceLimits:
    """Attributes:
    max_k: largest k a request may ask for.
    max_history: most events a recommend request may carry.
    max_events: most events one POST /v1/events may carry.
    max_body_bytes: larger request bodies get 413.
    max_filter_ids: most ids in each exclusion list.
    token_rate: rate limit per credential, in requests.
    user_rate: rate limit per user_id: a recommend costs 1, a POST /v1/events 1 per event.
    """

    max_k: int = 100
    max_history: int = 1000
    max_events: int = 1000
    max_body_bytes: int = 1_000_000
    max_filter_ids: int = 1000
    token_rate: Rate = Rate(1000, 2000)
    user_rate: Rate = Rate(100, 1000)


class Event(BaseModel):
    """One interaction (the canonical event of DESIGN.md, without user_id)."""

    model_config = _STRICT
    item_id: Text = _ID
    timestamp: int = Field(gt=0, lt=MAX_TIMESTAMP, description="unix seconds (the pipeline's rule)")
    action: Action
    watch_ms: int | None = Field(default=None, ge=0, le=10**10)
    duration_ms: int | None = Field(default=None, ge=0, le=10**10)
    reason: Reason | None = None
    event_id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="the client's id for this event: a repeat of (user, event_id) is acknowledged "
        "and stored once, so retries are safe",
    )


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    creator_id: str
    categories: list[str]


class FilteredItem(BaseModel):
    item_id: str
    score: float
    why: str = Field(
        description="consumed, disliked, creator_disliked, category_disliked, creator_disliked_predicted, "
        "category_disliked_predicted or request_filter"
    )
    detail: str | None = Field(
        default=None, description="for a predicted reason: which, with what probability"
    )


class RecommendResponse(BaseModel):
    user_id: str | None
    items: list[RecommendedItem]
    ignored_items: list[str] = Field(description="history item ids the model does not know (skipped)")
    cold_start: bool = Field(description="no usable history: ranked by training popularity")
    history_length: int = Field(description="events used (stored + sent)")
    filtered: list[FilteredItem] | None = Field(default=None, description="only with debug=true")


class PredictedReason(BaseModel):
    index: int = Field(description="position of the event in the request")
    item_id: str
    reason: str = Field(description="the reason model's most probable reason")
    confidence: float = Field(description="its probability")
    acts_on: str = Field(description="what the next recommendations drop: item, creator or category")
    why: str


class EventsResponse(BaseModel):
    user_id: str
    accepted: int = Field(description="events acknowledged (stored now or before)")
    duplicates: int = Field(default=0, description="of those, repeats of an event_id already stored")
    unknown_items: list[str] = Field(description="stored, but unknown to the current model")
    predicted_reasons: list[PredictedReason] = Field(
        default_factory=list, description="reasons filled in by the reason model (ntr serve --reasons)"
    )


class ModelInfo(BaseModel):
    variant: str
    fingerprint: str
    vocab_hash: str
    num_items: int
    dim: int
    index: dict
    limits: dict
    reasons: dict | None = Field(
        default=None, description="the reason model's held-out figures and group-removal threshold"
    )


class Health(BaseModel):
    status: str
    events_stored: int | None = Field(default=None, description="only for an admin (or with auth off)")


def request_models(limits: ServiceLimits) -> tuple[type[BaseModel], type[BaseModel]]:
    """(RecommendRequest, EventsRequest) with the service's limits in their constraints."""
    ids = (list[Text], Field(default_factory=list, max_length=limits.max_filter_ids))
    filters = create_model(
        "Filters",
        __config__=_STRICT,
        exclude_items=ids,
        exclude_creators=ids,
        exclude_categories=ids,
    )
    recommend = create_model(
        "RecommendRequest",
        __config__=_STRICT,
        user_id=(Text | None, Field(default=None, min_length=1, max_length=256)),
        history=(
            list[Event],
            Field(
                default_factory=list,
                max_length=limits.max_history,
                description="events after the stored ones, oldest first",
            ),
        ),
        k=(int, Field(default=10, ge=1, le=limits.max_k)),
        filters=(filters | None, None),
        debug=(bool, Field(default=False, description="also return the filtered candidates (admin only)")),
    )
    events = create_model(
        "EventsRequest",
        __config__=_STRICT,
        user_id=(Text, _ID),
        events=(list[Event], Field(min_length=1, max_length=limits.max_events)),
    )
    return recommend, events
