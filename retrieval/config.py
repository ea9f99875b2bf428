"""The retriever's config: one typed object (model + training) handed whole to every stage.

Variants are presets of the ablation switches, not code forks: `for_variant(name)` fills the
switches, and any field can still be overridden (`--set model.implicit_weight=0.5`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

# name -> switches. negative_inputs: negatives are part of the input history; reason_inputs:
# their reasons are embedded; *_weight: NTR weight of explicit / implicit negative targets;
# group_ntr: negatives whose reason has creator / category granularity push down the group.
VARIANTS: dict[str, dict[str, Any]] = {
    "positives_only": dict(
        negative_inputs=False, reason_inputs=False, explicit_weight=0.0, implicit_weight=0.0, group_ntr=False
    ),
    "neg_features_only": dict(
        negative_inputs=True, reason_inputs=False, explicit_weight=0.0, implicit_weight=0.0, group_ntr=False
    ),
    "ntr": dict(
        negative_inputs=True, reason_inputs=False, explicit_weight=1.0, implicit_weight=0.1, group_ntr=False
    ),
    "ntr_reasons": dict(
        negative_inputs=True, reason_inputs=True, explicit_weight=1.0, implicit_weight=0.1, group_ntr=False
    ),
    "group_ntr": dict(
        negative_inputs=True, reason_inputs=True, explicit_weight=1.0, implicit_weight=0.1, group_ntr=True
    ),
    "ntr_history": dict(
        negative_inputs=True,
        reason_inputs=True,
        explicit_weight=1.0,
        implicit_weight=0.1,
        group_ntr=False,
        history_weight=1.0,
        history_implicit_weight=0.1,
        negative_path=True,
        negative_path_scale=100.0,
        negative_path_decay=0.9,
        negative_path_skips=False,
        # The query reads the last event's state, skips included (VARIANT_DEFAULTS): in the closed
        # loop of three worlds the engaged anchor lost on watch time (-20%, -7%, -22%) and skips
        # (+22%, +13%, +37%) at a dislike rate within 2% or 9% higher, while scoring 3-16% higher
        # logged NDCG@10, the metric that disagrees with the closed loop (BENCHMARKS.md
        # `agreement`, `agreement_world_mix`, `agreement_world_kuairand`, issue 25).
        # Its negative targets must leave the top 10 (a strong push only where they are seen):
        # on the world NegHit@10 -51% against -43% with the softmax form, NDCG -3.0% vs -3.5%.
        ntr_form="topk",
    ),
    # The successor of ntr_history: the Transformer reads what positives_only reads (negatives
    # hidden from it), so with the path at zero it ranks as positives_only does; negatives act
    # through the negative path alone, each stated granularity on its own part, with strengths
    # fitted on the validation split after training (retrieval/reaction.py) within an NDCG
    # budget. No history-side NTR: it imposed a near-total reaction on every log and cost up
    # to 30% NDCG@10 where the log's lesson is weak.
    "ntr_fitted": dict(
        negative_inputs=False,
        reason_inputs=False,
        explicit_weight=0.0,
        implicit_weight=0.0,
        group_ntr=False,
        negative_path=True,
        negative_path_scale=100.0,
        negative_path_decay=0.9,
        negative_path_skips=False,
        negative_path_parts="own",
        negative_path_units="logit",
        fit_reaction=True,
    ),
}
# Switches a variant does not name keep these values (so `ntr` has no history-side NTR).
VARIANT_DEFAULTS: dict[str, Any] = dict(
    history_weight=0.0,
    history_implicit_weight=0.0,
    negative_path=False,
    query_anchor="event",
    ntr_form="softmax",
    negative_path_parts="free",
    negative_path_units="embedding",
    fit_reaction=False,
)
HISTORY_FORMS = ("target", "corpus", "topk")
STRATEGIES = ("default", "mirrored", "one_device", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("auto", "adam", "lazy_adam")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture and loss switches.

    Attributes:
      variant: the preset these switches came from (a label; the switches below decide).
      dim: embedding and Transformer width.
      num_blocks: pre-LN Transformer blocks.
      num_heads: attention heads (dim must divide by it).
      ff_dim: feed-forward width inside a block.
      dropout: dropout on embeddings, attention output and feed-forward output.
      max_len: history positions (must be >= the pipeline's max_len).
      negative_inputs: the Transformer attends to negative events (False: they are invisible
        to it; with `negative_path` they still act, through the path alone).
      reason_inputs: embed the dislike reason of each event.
      explicit_weight: NTR weight `w` for explicit negative targets (0 = no NTR on them).
      implicit_weight: NTR weight for implicit negatives (skips).
      group_ntr: for reasons of creator / category granularity, `-w log(1 - sum_G p)` over the
        group instead of the item alone.
      item_features: add creator and category embeddings to the item tower.
      tie_item_embeddings: the item tower shares the input item embedding (False: its own).
      softmax: `full` (all items), `sampled` (in-batch + uniform with logQ) or `auto`
        (full up to `full_softmax_max_items` items).
      full_softmax_max_items: the `auto` threshold.
      num_uniform_candidates: extra uniformly drawn candidates for `sampled`.
      sampled_log_q: the logQ correction of `sampled`: `popularity` (log of the item's share
        of positive train targets, for in-batch and uniform candidates alike) or `mixture`
        (log of its expected count among the draws: in-batch targets x share + uniform draws
        / items, so a rare item drawn uniformly is not corrected as if it were drawn in-batch).
      ntr_candidates: where NTR's p of a negative target is computed under a sampled softmax:
        `softmax` (over the sampled candidates, as in the seed paper) or `full` (over every
        item, to compare). With a full softmax both are the same.
      ntr_form: NTR's p of a negative target: `softmax` (its softmax probability, as in the
        seed paper) or `topk` (its chance to beat the fixed K-th best other item: a strong push
        while it sits in the top `ntr_topk`, none once it is out; `losses.functions`).
      ntr_topk: the K of `topk`.
      token_item_features: input tokens embed the item with the item tower (id + creator +
        categories), so a disliked token carries its creator and category (False: id only).
      history_weight: history-side NTR weight `w_h` of explicit negatives: every later positive
        target t of the window gets `-w_h log(1 - p_G(t))` for the negative's group G (its
        creator / category by the reason's granularity, else the item). 0 = off.
      history_implicit_weight: the same for skips (G = the skipped item).
      history_decay: w_h is multiplied by decay ** (events between the negative and t).
      history_normalise: divide w_h by the number of negatives of the same kind before t.
      history_form: where p_G is computed: `target` (among G and the position's actual next
        positive: G must rank below what the user watched), `corpus` (the softmax's candidates),
        or `topk` (among G and a fixed bar at the position's `history_topk`-th best logit: G
        must leave the top K, and nothing else is pushed).
      history_topk: the K of `topk`.
      history_trains_items: the history-side loss also moves the item embeddings of G and of
        the target (False: it trains only what builds the query, so a history dislike teaches
        "after this, avoid that" and never lowers G for users who did not dislike it).
      negative_path_scale: the path's coefficients are stored divided by this (Adam moves them
        by ~the learning rate per step; see retrieval/negative_path.py).
      negative_path_decay: per-event decay of a negative's penalty in the negative path.
      negative_path_skips: skips act through the negative path too (False: explicit only).
      query_anchor: which Transformer state a query reads: `event` (the last event's) or
        `engaged` (the last non-negative event's, which has attended to the negatives before it;
        negatives after it act only through `negative_path`).
      action_gate_scale: the per-action gate on a token's item is `1 + scale * g`, g learned
        from 0 (larger: a negative action can flip its item's direction within a run).
      negative_path: subtract a learned mix of each history negative's id / creator / category
        embeddings from every later query (`retrieval/negative_path.py`). With
        negative_inputs=false the query is the Transformer state of the last non-negative
        event minus the path, as with query_anchor="engaged".
      negative_path_parts: `free` (each kind of negative may use every part) or `own` (a
        creator reason only the creator part, a category reason only the category part).
      negative_path_units: `embedding` (subtract b * part) or `logit` (b * part / |part|^2: b
        is the logit drop of the disliked group, comparable across kinds and parts).
      fit_reaction: the negative path stays at 0 while the model trains (so with
        negative_inputs=false the model trains exactly as positives_only does); afterwards its
        strengths are fitted on the validation split (`retrieval/reaction.py`) and recorded in
        the model's config.json; a stated granularity the log never carried borrows the
        disliked item's own fitted drop (the item-level strengths summed).
      reaction_min_support: validation negatives of a kind (each followed by an exposure target
        in its window) needed to fit that kind's strengths; fewer, and it borrows.
      reaction_ndcg_budget: the most validation NDCG@10 (relative, against no path) the fitted
        strengths may cost; beyond it they are scaled down until they fit.
    """

    variant: str = "ntr"
    dim: int = 64
    num_blocks: int = 2
    num_heads: int = 2
    ff_dim: int = 128
    dropout: float = 0.1
    max_len: int = 50
    negative_inputs: bool = True
    reason_inputs: bool = False
    explicit_weight: float = 1.0
    implicit_weight: float = 0.1
    group_ntr: bool = False
    item_features: bool = True
    tie_item_embeddings: bool = True
    softmax: str = "auto"
    full_softmax_max_items: int = 50_000
    # At 10^5 items, one change at a time (BENCHMARKS.md `sampled_softmax`): mixture logQ and
    # 4,096 uniform draws close the gap to the full softmax that 512 draws with popularity logQ
    # left (-31%), at >4x its speed.
    num_uniform_candidates: int = 4096
    sampled_log_q: str = "mixture"
    ntr_candidates: str = "softmax"
    ntr_form: str = "softmax"
    ntr_topk: int = 10
    token_item_features: bool = True
    history_weight: float = 0.0
    history_implicit_weight: float = 0.0
    history_decay: float = 1.0
    history_normalise: bool = False
    history_form: str = "target"
    history_trains_items: bool = True
    history_topk: int = 20
    negative_path: bool = False
    action_gate_scale: float = 1.0
    query_anchor: str = "event"
    negative_path_scale: float = 30.0
    negative_path_decay: float = 1.0
    negative_path_skips: bool = True
    negative_path_parts: str = "free"
    negative_path_units: str = "embedding"
    fit_reaction: bool = False
    reaction_min_support: int = 20
    reaction_ndcg_budget: float = 0.01

    def __post_init__(self):
        if self.dim % self.num_heads:
            raise ValueError(f"dim={self.dim} must be a multiple of num_heads={self.num_heads}.")
        if self.softmax not in ("full", "sampled", "auto"):
            raise ValueError(f"softmax must be full, sampled or auto, got {self.softmax!r}.")
        weights = (
            self.explicit_weight,
            self.implicit_weight,
            self.history_weight,
            self.history_implicit_weight,
        )
        if min(weights) < 0:
            raise ValueError("NTR weights must be >= 0.")
        if not 0.0 < self.negative_path_decay <= 1.0:
            raise ValueError(f"negative_path_decay must be in (0, 1], got {self.negative_path_decay}.")
        if not 0.0 < self.history_decay <= 1.0:
            raise ValueError(f"history_decay must be in (0, 1], got {self.history_decay}.")
        if self.sampled_log_q not in ("popularity", "mixture"):
            raise ValueError(f"sampled_log_q must be popularity or mixture, got {self.sampled_log_q!r}.")
        if self.ntr_candidates not in ("softmax", "full"):
            raise ValueError(f"ntr_candidates must be softmax or full, got {self.ntr_candidates!r}.")
        if self.ntr_candidates == "full" and self.group_ntr:
            raise ValueError(
                "ntr_candidates='full' is for item-level NTR; set group_ntr=false or use 'softmax'."
            )
        if self.ntr_form not in ("softmax", "topk"):
            raise ValueError(f"ntr_form must be softmax or topk, got {self.ntr_form!r}.")
        if self.ntr_topk < 1:
            raise ValueError(f"ntr_topk must be >= 1, got {self.ntr_topk}.")
        if self.query_anchor not in ("event", "engaged"):
            raise ValueError(f"query_anchor must be event or engaged, got {self.query_anchor!r}.")
        if self.history_topk < 1:
            raise ValueError(f"history_topk must be >= 1, got {self.history_topk}.")
        if self.history_form not in HISTORY_FORMS:
            raise ValueError(f"history_form must be one of {HISTORY_FORMS}, got {self.history_form!r}.")
        if self.negative_path_parts not in ("free", "own"):
            raise ValueError(f"negative_path_parts must be free or own, got {self.negative_path_parts!r}.")
        if self.negative_path_units not in ("embedding", "logit"):
            raise ValueError(
                f"negative_path_units must be embedding or logit, got {self.negative_path_units!r}."
            )
        if self.fit_reaction and not self.negative_path:
            raise ValueError(
                "fit_reaction fits the negative path: set model.negative_path=true, or "
                "model.fit_reaction=false."
            )
        if not 0.0 <= self.reaction_ndcg_budget < 1.0:
            raise ValueError(f"reaction_ndcg_budget must be in [0, 1), got {self.reaction_ndcg_budget}.")
        if self.reaction_min_support < 1:
            raise ValueError(f"reaction_min_support must be >= 1, got {self.reaction_min_support}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1).")

    def use_full_softmax(self, num_items: int) -> bool:
        return self.softmax == "full" or (self.softmax == "auto" and num_items <= self.full_softmax_max_items)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How training runs.

    Attributes:
      batch_size: global batch of sequence windows (split across replicas).
      learning_rate: Adam learning rate.
      optimizer: `adam`, `lazy_adam` (sparse updates move only the rows a batch touched; see
        retrieval/optimizer.py) or `auto` (`lazy_adam` under a sampled softmax, else `adam`).
      epochs: maximum passes over the train split.
      patience: epochs without a better validation NDCG@10 before stopping.
      checkpoint_every: steps between checkpoints (also saved at each epoch end).
      seed: seeds initialisation, dropout and the per-epoch shuffle.
      strategy: tf.distribute strategy: default, mirrored, one_device, or multi_worker (the
        cluster in TF_CONFIG; `ntr train --local-workers N` starts one on this machine).
      eval_k: the K of the validation NDCG used for early stopping.
      valid_windows: validate on a fixed sample of about this many valid windows, chosen by a
        fingerprint of the user id, when the split has more (0: every window). Validation ranks
        the whole catalogue for every target, so its cost is windows x items: 2,300 windows at
        10^5 items take about a minute on 2 cores, and ten times that at 10^6 (lower it there).
      jit_compile: compile the Transformer with XLA (`tf.function(jit_compile=True)`); the
        loss, whose shapes depend on how many targets a batch has, stays a plain graph.
      precision: float32, or mixed_float16 / mixed_bfloat16 on a GPU (Keras mixed precision;
        on a machine without a GPU training stays float32 and says so).
    """

    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "auto"
    epochs: int = 10
    patience: int = 2
    checkpoint_every: int = 100
    seed: int = 0
    strategy: str = "default"
    eval_k: int = 10
    valid_windows: int = 10_000
    jit_compile: bool = False
    precision: str = "float32"

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy {self.strategy!r} is not one of {STRATEGIES}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {PRECISIONS}.")
        if self.valid_windows < 0:
            raise ValueError("valid_windows must be >= 0 (0: validate on every window).")
        if self.batch_size < 1 or self.epochs < 1 or self.checkpoint_every < 1:
            raise ValueError("batch_size, epochs and checkpoint_every must be >= 1.")


@dataclasses.dataclass(frozen=True)
class RetrievalConfig:
    """Model + training; written to models/<variant>/config.json and read back whole."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrievalConfig:
        unknown = set(data) - {"model", "train"}
        if unknown:
            raise ValueError(f"unknown config sections {sorted(unknown)}: use 'model' and 'train'.")
        return cls(
            model=_build(ModelConfig, data.get("model", {})), train=_build(TrainConfig, data.get("train", {}))
        )


def _build(kind, values: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown {kind.__name__} fields {sorted(unknown)}; known: {sorted(names)}.")
    return kind(**values)


def for_variant(name: str, base: RetrievalConfig | None = None) -> RetrievalConfig:
    """`base` (default config when None) with the switches of variant `name`."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}.")
    base = base or RetrievalConfig()
    switches = {**VARIANT_DEFAULTS, **VARIANTS[name]}
    return dataclasses.replace(base, model=dataclasses.replace(base.model, variant=name, **switches))


def parse_value(text: str) -> Any:
    """A `--set` value: JSON (numbers, true/false, null, quoted strings) or a bare string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def with_overrides(config: RetrievalConfig, overrides: list[str]) -> RetrievalConfig:
    """Apply `section.field=value` overrides, e.g. `model.dim=32`, `train.epochs=3`."""
    data = config.to_dict()
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, field = key.strip().partition(".")
        if not sep or not dot or section not in data:
            raise ValueError(f"override {item!r} must look like model.dim=32 or train.epochs=3.")
        if field not in data[section]:
            raise ValueError(f"unknown field {key!r}; known: {sorted(data[section])}.")
        data[section][field] = parse_value(value)
    return RetrievalConfig.from_dict(data)
