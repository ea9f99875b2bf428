"""Fit the reaction to a dislike on the validation split, the way temperature scaling fits a softmax.

Training sets how the model ranks; how strongly a dislike should move the next queries is a
property of the log: do users still engage with a group they disliked when it is shown again?
A loss that asserts "rank it below every later positive" imposes one answer on every log (a
near-total reaction where the log's lesson is weak, and the NDCG cost that goes with it).

Here the negative path's strengths b, a handful of scalars ([kinds, parts]), are fitted after
training on the validation windows with everything else frozen. The evidence is every
*exposure* there (a target of any label), as in the log's lesson: the score of the exposed
item, `s = s0 - sum_kp b_kp u_kp` (s0 the score without the path, u_kp what a unit strength
of kind k on part p takes off this item's score: the path is linear in b), predicts whether the
exposure was positive, `P(positive) = sigmoid(a s + c)`, with a temperature a > 0 and a bias c
fitted alongside. So b grows exactly as far as later exposures to a disliked group are engaged
less than the model's scores say, conditional on their being shown (the logging feed's choice of
what to show does not count as evidence, as it would in the next-item softmax). b >= 0: a
dislike never pulls its group closer. SciPy's bounded L-BFGS-B solves it exactly.

Then a budget: the strengths may cost at most `reaction_ndcg_budget` of validation NDCG@10
(relative to no path). Each kind the fit switched on gets an equal share and is scaled down
alone as far as its share needs, then all together against the whole budget; what was kept of
each kind is recorded. The path's per-event decay (how long a dislike lasts) is chosen among
`DECAYS` as the one whose strengths, once within the budget, explain the exposures best: a
short decay buys a strong reaction right after a dislike at little NDCG cost (on the default
world the likelihood alone preferred 0.95, whose strengths the budget then cut to 2-20%).
NDCG for the budget is computed from the unit terms without re-running the model
(`ranking_ndcg`); the final strengths are checked with the real ranking.

A kind the validation log holds too few of (a stated `creator` reason in a log that never
states reasons) cannot be fitted; it borrows the drop the log supports for the disliked item
itself after a reasonless dislike (the item-level kind's strengths summed over its parts, in
logit units), applied at its own granularity. So "hide this creator" means something even on
a model trained without creator reasons.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import optimize

from ntr.pipelines.events import Label
from ntr.retrieval.data import NUM_RESERVED, sequence_dataset
from ntr.retrieval.evaluate import validation_ndcg
from ntr.retrieval.model import NTRModel
from ntr.retrieval.negative_path import NUM_KINDS, OWN_PARTS
from ntr.tfenv import tf

KIND_NAMES = ("item", "creator", "category", "skip")
PART_NAMES = ("id", "creator", "category")
ITEM_KIND, CREATOR_KIND, CATEGORY_KIND, SKIP_KIND = 0, 1, 2, 3
BUDGET_STEPS = 6  # bisection steps on a strengths' scale when the NDCG budget binds
# How long a dislike lasts is the log's to say too: the path's per-event decay is chosen among
# these (module doc; 1.0: it never fades within the window).
DECAYS = (0.5, 0.7, 0.85, 0.95, 1.0)


def path_terms(model: NTRModel, batches: list[dict], decays: tuple[float, ...]) -> dict:
    """What the fit and the budget need from the validation targets, computed once: the path is
    linear in its strengths, so any strengths' scores and rankings follow from unit terms.

    Args:
      model: the trained model (its path's strengths and decay are restored afterwards).
      batches: validation batches.
      decays: the path decays to compute the unit terms for.

    Returns:
      {"base": [n] score of each target's item without the path, "unit": {decay: [n,
      NUM_KINDS, 3] score taken off it by a unit strength of each (kind, part)}, "label": [n],
      "support": [NUM_KINDS] int negatives of each kind with a later target in their window,
      and for the positive targets (p of them): "query": [p, dim] queries without the path,
      "query_unit": {decay: [p, NUM_KINDS * 3, dim]} unit path vectors, "column": [p] target
      item columns, "exclude": [p, seq_len] item columns filtered from its ranking (-1: none)}.
    """
    path = model.negative_path
    saved, saved_decay = path.coefficients.numpy(), path.decay
    parts: dict[str, list] = {"base": [], "label": [], "query": [], "column": [], "exclude": []}
    unit = {decay: [] for decay in decays}
    query_unit = {decay: [] for decay in decays}
    support = np.zeros(NUM_KINDS, np.int64)
    try:
        path.coefficients.assign(np.zeros_like(saved))
        for batch in batches:
            states, query_pos = model.states(batch)
            targets = model.target_queries(batch, states=(states, query_pos))
            row, position = targets["row"], targets["position"]
            where = tf.stack([row, tf.gather_nd(query_pos, tf.stack([row, position], 1))], 1)
            items = model.item_tower(targets["item"])  # [n, dim]
            label = targets["label"].numpy()
            positive = label == int(Label.POSITIVE)
            parts["base"].append(tf.reduce_sum(targets["query"] * items, 1).numpy())
            parts["label"].append(label)
            parts["query"].append(targets["query"].numpy()[positive])
            item = targets["item"].numpy()
            parts["column"].append(item[positive] - NUM_RESERVED)
            # The ranking's history filter (retrieval.evaluate): the window's items before the
            # target, other than the target itself.
            history = batch["item"].numpy()[row.numpy()]
            before = np.arange(history.shape[1])[None, :] < position.numpy()[:, None]
            keep = before & (history >= NUM_RESERVED) & (history != item[:, None])
            parts["exclude"].append(np.where(keep, history - NUM_RESERVED, -1)[positive])
            attend = batch["mask"]
            for decay in decays:
                path.decay = float(decay)
                columns, vectors = [], []
                for kind in range(NUM_KINDS):
                    for part in range(3):
                        one = np.zeros_like(saved)
                        one[kind, part] = 1.0 / path.scale
                        path.coefficients.assign(one)
                        vector = tf.gather_nd(path(batch, attend), where)  # [n, dim]
                        columns.append(tf.reduce_sum(vector * items, 1).numpy())
                        vectors.append(vector.numpy()[positive])
                unit[decay].append(np.stack(columns, 1).reshape(-1, NUM_KINDS, 3))
                query_unit[decay].append(np.stack(vectors, 1))
            path.coefficients.assign(np.zeros_like(saved))
            kinds = path.kinds(batch, attend).numpy()
            target = (batch["is_target"].numpy() > 0) & batch["mask"].numpy()
            later = np.flip(np.cumsum(np.flip(target, 1), 1), 1) - target  # targets after each position
            for kind in range(NUM_KINDS):
                support[kind] += int(np.sum((kinds == kind) & (later > 0)))
    finally:
        path.coefficients.assign(saved)
        path.decay = saved_decay
    out = {name: np.concatenate(values) for name, values in parts.items()}
    out["base"] = out["base"].astype(np.float64)
    out["unit"] = {d: np.concatenate(v).astype(np.float64) for d, v in unit.items()}
    out["query_unit"] = {d: np.concatenate(v) for d, v in query_unit.items()}
    out["support"] = support
    return out


def exposure_fit(terms: dict, decay: float, allowed: np.ndarray) -> dict:
    """`fit_strengths` on the exposures of `path_terms`: every target but the neutral ones (a
    partial view says neither "engaged" nor "rejected")."""
    keep = terms["label"] != int(Label.NEUTRAL)
    positive = terms["label"][keep] == int(Label.POSITIVE)
    return fit_strengths(terms["base"][keep], terms["unit"][decay][keep], positive, allowed)


def exposure_loss(terms: dict, decay: float, strengths: np.ndarray) -> float:
    """Mean log loss of the exposures at given strengths, temperature and bias refitted."""
    keep = terms["label"] != int(Label.NEUTRAL)
    unit = terms["unit"][decay][keep]
    score = terms["base"][keep] - unit.reshape(len(unit), -1) @ np.asarray(strengths, np.float64).ravel()
    positive = terms["label"][keep] == int(Label.POSITIVE)
    return fit_strengths(score, unit, positive, np.zeros(unit.shape[1:], bool))["loss"]


def ranking_ndcg(
    terms: dict, candidates: np.ndarray, decay: float, strengths: np.ndarray, k: int = 10
) -> float:
    """Validation NDCG@k of the positive targets at given path strengths, from `path_terms`
    (the same ranking as `retrieval.evaluate.validation_ndcg`, without re-running the model).

    Args:
      terms: `path_terms(...)`.
      candidates: [num_items, dim] item embeddings (`model.candidate_embeddings()`).
      decay: one of the decays the terms hold.
      strengths: [NUM_KINDS, 3] effective strengths.
      k: the NDCG cutoff.
    """
    weights = np.asarray(strengths, np.float32).ravel()
    gains = []
    for start in range(0, len(terms["column"]), 2048):
        end = start + 2048
        query = terms["query"][start:end] - np.einsum(
            "nkd,k->nd", terms["query_unit"][decay][start:end], weights
        )
        scores = query @ candidates.T
        exclude = terms["exclude"][start:end]
        rows, slots = np.nonzero(exclude >= 0)
        scores[rows, exclude[rows, slots]] = -np.inf
        column = terms["column"][start:end]
        target = scores[np.arange(len(column)), column]
        rank = np.sum(scores > target[:, None], axis=1)
        gains.append(np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0))
    return float(np.mean(np.concatenate(gains))) if gains else 0.0


def fit_strengths(
    base: np.ndarray,
    unit: np.ndarray,
    positive: np.ndarray,
    allowed: np.ndarray,
    start: np.ndarray | None = None,
) -> dict:
    """Maximum-likelihood strengths of `P(positive) = sigmoid(a (base - unit . b) + c)`, b >= 0.

    Args:
      base: [n] scores without the path.
      unit: [n, K, P] score taken off by a unit strength of each (kind, part).
      positive: [n] bool outcome of each exposure.
      allowed: [K, P] bool, the strengths that may be non-zero.
      start: [K, P] initial strengths (0 when None).

    Returns:
      {"strengths": [K, P], "temperature": a, "bias": c, "loss": mean log loss at the optimum,
      "loss_without": the same with b = 0 (a and c refitted)}.
    """
    y = positive.astype(np.float64)
    flat_unit = unit.reshape(len(base), -1)[:, allowed.ravel()]
    m = flat_unit.shape[1]

    def loss_and_grad(theta):
        a, c, b = theta[0], theta[1], theta[2:]
        score = base - flat_unit @ b
        z = a * score + c
        # mean of log(1 + e^z) - y z, stably; d/dz = sigmoid(z) - y
        loss = np.mean(np.logaddexp(0.0, z) - y * z)
        r = (1.0 / (1.0 + np.exp(-z)) - y) / len(y)
        return loss, np.concatenate([[r @ score, r.sum()], -a * (flat_unit.T @ r)])

    b0 = (
        np.zeros(m)
        if start is None
        else np.maximum(np.asarray(start, np.float64).ravel()[allowed.ravel()], 0.0)
    )
    bounds = [(1e-3, None), (None, None)] + [(0.0, None)] * m

    def solve(theta, bounds):
        result = optimize.minimize(loss_and_grad, theta, jac=True, method="L-BFGS-B", bounds=bounds)
        return result.x, float(result.fun)

    theta, loss = solve(np.concatenate([[1.0, 0.0], b0]), bounds)
    _, loss_without = solve(np.concatenate([[1.0, 0.0], np.zeros(m)]), bounds[:2] + [(0.0, 0.0)] * m)
    strengths = np.zeros(allowed.shape)
    strengths.ravel()[np.flatnonzero(allowed.ravel())] = theta[2:]
    return {
        "strengths": strengths,
        "temperature": float(theta[0]),
        "bias": float(theta[1]),
        "loss": loss,
        "loss_without": loss_without,
    }


def borrowed_strengths(
    strengths: np.ndarray, support: np.ndarray, min_support: int
) -> tuple[np.ndarray, list[str]]:
    """Strengths [NUM_KINDS, 3] with unsupported creator / category kinds filled in.

    An explicit kind with fewer than `min_support` examples gets, on its own part, the drop the
    log supports for the disliked item itself: the item-level kind's strengths summed over its
    parts (the item loses all three), when that kind is supported ("not this creator" says the
    whole creator is as unwanted as that item; and so the creator drops at least as much as
    after a reasonless dislike), else the largest summed strength of a supported explicit kind.
    Skips are left as fitted. Returns (strengths, names of the kinds that borrowed).
    """
    out = np.array(strengths, np.float32)
    supported = [k for k in (ITEM_KIND, CREATOR_KIND, CATEGORY_KIND) if support[k] >= min_support]
    if not supported:
        return out, []
    strength = (
        float(out[ITEM_KIND].sum()) if ITEM_KIND in supported else float(max(out[k].sum() for k in supported))
    )
    borrowed = []
    for kind in (CREATOR_KIND, CATEGORY_KIND):
        if support[kind] < min_support:
            out[kind] = np.asarray(OWN_PARTS[kind], np.float32) * strength
            borrowed.append(KIND_NAMES[kind])
    return out, borrowed


def _within_budget(
    terms: dict,
    candidates: np.ndarray,
    decay: float,
    allowed: np.ndarray,
    without: float,
    budget: float,
    k: int,
) -> dict:
    """The maximum-likelihood strengths at `decay`, scaled into the NDCG budget.

    The budget is shared equally among the kinds the fit switched on, each scaled down alone as
    far as its share needs (a kind whose suppression costs little ranking quality keeps its full
    strength), then all together against the whole budget. Returns {"fit", "strengths",
    "scales": [NUM_KINDS], "full_ndcg", "kept_loss"}.
    """
    fit = exposure_fit(terms, decay, allowed)

    def largest_scale(strengths: np.ndarray, floor: float) -> float:
        if ranking_ndcg(terms, candidates, decay, strengths, k) >= floor:
            return 1.0
        low, high = 0.0, 1.0
        for _ in range(BUDGET_STEPS):
            middle = (low + high) / 2
            if ranking_ndcg(terms, candidates, decay, strengths * middle, k) >= floor:
                low = middle
            else:
                high = middle
        return low

    active = [kind for kind in range(NUM_KINDS) if fit["strengths"][kind].any()]
    scales = np.ones(NUM_KINDS)
    for kind in active:
        alone = np.zeros_like(fit["strengths"])
        alone[kind] = fit["strengths"][kind]
        scales[kind] = largest_scale(alone, without * (1.0 - budget / len(active)))
    scales *= largest_scale(fit["strengths"] * scales[:, None], without * (1.0 - budget))
    strengths = fit["strengths"] * scales[:, None]
    return {
        "fit": fit,
        "strengths": strengths,
        "scales": scales,
        "full_ndcg": ranking_ndcg(terms, candidates, decay, fit["strengths"], k),
        "kept_loss": exposure_loss(terms, decay, strengths),
    }


def fit_reaction(
    model: NTRModel,
    data_dir: str,
    batch_size: int = 256,
    log: Callable[[str], None] = print,
) -> dict:
    """Fit `model.negative_path`'s strengths on `data_dir`'s validation windows, in place.

    Args:
      model: a trained model with a negative path (its other weights are not changed).
      data_dir: the preprocessed data the model was trained on.
      batch_size: validation windows per batch.
      log: progress lines.

    Returns:
      The record written to the model's config.json: {"strengths": [NUM_KINDS][3] effective
      strengths in force (logit units with `negative_path_units="logit"`), "decay": the
      path's per-event decay, "fitted": the maximum-likelihood strengths before the budget,
      "scales": [NUM_KINDS] the factor the NDCG budget kept of each kind, "support": {kind:
      examples}, "borrowed": [kinds], "exposures", "temperature", "bias", "log_loss":
      {"without_path", "fitted"}, "log_loss_by_decay", "valid_ndcg@10": {"without_path",
      "fitted", "kept"}}.
    """
    path = model.negative_path
    if path is None:
        raise ValueError("fit_reaction needs a model with a negative path (model.negative_path=true).")
    m = model.config.model
    batches = [
        {k: v for k, v in b.items() if k != "user_id"}
        for b in sequence_dataset(data_dir, "valid", batch_size, m.max_len)
    ]
    if not batches:
        raise ValueError(
            f"{data_dir} has no validation windows to fit the reaction on; re-run `ntr preprocess`."
        )
    allowed = path.allowed.numpy() > 0
    allowed[SKIP_KIND] &= path.skips  # skips act through the path only when it lets them
    terms = path_terms(model, batches, DECAYS)
    candidates = model.candidate_embeddings().numpy()
    k = model.config.train.eval_k
    without = ranking_ndcg(terms, candidates, DECAYS[0], np.zeros((NUM_KINDS, 3)), k)
    choices = {
        decay: _within_budget(terms, candidates, decay, allowed, without, m.reaction_ndcg_budget, k)
        for decay in DECAYS
    }
    # The decay whose strengths, once within the budget, explain the exposures best.
    decay = min(DECAYS, key=lambda d: choices[d]["kept_loss"])
    choice = choices[decay]
    strengths, borrowed = borrowed_strengths(choice["strengths"], terms["support"], m.reaction_min_support)
    strengths = strengths.astype(np.float32)
    apply_reaction(model, {"strengths": strengths, "decay": decay})
    kept = validation_ndcg(model, data_dir, k)  # the real ranking, as a check on the fast one
    fit = choice["fit"]
    record = {
        "strengths": np.round(strengths, 4).tolist(),
        "decay": decay,
        "fitted": np.round(fit["strengths"], 4).tolist(),
        "scales": np.round(choice["scales"], 4).tolist(),
        "support": {name: int(n) for name, n in zip(KIND_NAMES, terms["support"], strict=True)},
        "borrowed": borrowed,
        "exposures": int(np.sum(terms["label"] != int(Label.NEUTRAL))),
        "temperature": round(fit["temperature"], 4),
        "bias": round(fit["bias"], 4),
        "log_loss": {
            "without_path": round(fit["loss_without"], 5),
            "fitted": round(fit["loss"], 5),
            "kept": round(choice["kept_loss"], 5),
        },
        "kept_log_loss_by_decay": {str(d): round(choices[d]["kept_loss"], 5) for d in DECAYS},
        "valid_ndcg@10": {
            "without_path": round(without, 5),
            "fitted": round(choice["full_ndcg"], 5),
            "kept": round(kept, 5),
        },
    }
    shown = "; ".join(
        f"{KIND_NAMES[k]} ({terms['support'][k]}): "
        + " ".join(
            f"{PART_NAMES[p]} {strengths[k, p]:.2f}" for p in range(3) if allowed[k, p] or strengths[k, p]
        )
        for k in range(NUM_KINDS)
        if allowed[k].any() or strengths[k].any()
    )
    log(
        f"reaction fitted on {record['exposures']:,} validation exposures: log loss "
        f"{record['log_loss']['without_path']:.4f} -> {record['log_loss']['kept']:.4f}; valid "
        f"ndcg@10 {without:.4f} without the path, {kept:.4f} with it; decay {decay}; {shown}"
        + (f"; borrowed: {', '.join(borrowed)}" if borrowed else "")
    )
    return record


def apply_reaction(model: NTRModel, record: dict) -> None:
    """Set `model.negative_path`'s strengths to a `fit_reaction` record's."""
    strengths = np.asarray(record["strengths"], np.float32)
    if strengths.shape != (NUM_KINDS, 3):
        raise ValueError(f"a reaction record holds [{NUM_KINDS}, 3] strengths, not {list(strengths.shape)}.")
    model.negative_path.coefficients.assign(strengths / model.negative_path.scale)
    model.negative_path.decay = float(record.get("decay", model.negative_path.decay))
    # The decay is a constant inside traced functions: trace the ranking anew.
    model.__dict__.pop("_ntr_rank_functions", None)
