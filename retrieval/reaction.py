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

Then a budget: if the fitted strengths cost more than `reaction_ndcg_budget` of validation
NDCG@10 (relative to no path), they are scaled down until they do not.

A kind the validation log holds too few of (a stated `creator` reason in a log that never
states reasons) cannot be fitted; it borrows the strength the log supports for a dislike of
the item itself (the item-level kind's id strength, in logit units), applied at its own
granularity. So "hide this creator" means something even on a model trained without creator
reasons.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import optimize

from ntr.pipelines.events import Label
from ntr.retrieval.data import sequence_dataset
from ntr.retrieval.evaluate import validation_ndcg
from ntr.retrieval.model import NTRModel
from ntr.retrieval.negative_path import NUM_KINDS, OWN_PARTS
from ntr.tfenv import tf

KIND_NAMES = ("item", "creator", "category", "skip")
PART_NAMES = ("id", "creator", "category")
ITEM_KIND, CREATOR_KIND, CATEGORY_KIND, SKIP_KIND = 0, 1, 2, 3
BUDGET_STEPS = 6  # bisection steps on the strengths' scale when the NDCG budget binds


def exposure_terms(model: NTRModel, batches: list[dict]) -> dict[str, np.ndarray]:
    """Per exposure target of `batches`: what the fit needs, the path being linear in b.

    Returns:
      {"base": [n] score without the path, "unit": [n, NUM_KINDS, 3] score taken off by a unit
      strength of each (kind, part), "positive": [n] bool, positive (else a negative; neutral
      exposures are left out), "support": [NUM_KINDS] int
      negatives of each kind with a later exposure target in their window}.
    """
    path = model.negative_path
    saved = path.coefficients.numpy()
    base, unit, labels = [], [], []
    support = np.zeros(NUM_KINDS, np.int64)
    try:
        path.coefficients.assign(np.zeros_like(saved))
        for batch in batches:
            states, query_pos = model.states(batch)
            targets = model.target_queries(batch, states=(states, query_pos))
            where = tf.stack(
                [targets["row"], tf.gather_nd(query_pos, tf.stack([targets["row"], targets["position"]], 1))],
                1,
            )
            items = model.item_tower(targets["item"])  # [n, dim]
            base.append(tf.reduce_sum(targets["query"] * items, 1).numpy())
            labels.append(targets["label"].numpy())
            attend = batch["mask"]
            columns = []
            for kind in range(NUM_KINDS):
                for part in range(3):
                    one = np.zeros_like(saved)
                    one[kind, part] = 1.0 / path.scale
                    path.coefficients.assign(one)
                    vectors = tf.gather_nd(path(batch, attend), where)  # [n, dim]
                    columns.append(tf.reduce_sum(vectors * items, 1).numpy())
            path.coefficients.assign(np.zeros_like(saved))
            unit.append(np.stack(columns, 1).reshape(-1, NUM_KINDS, 3))
            kinds = path.kinds(batch, attend).numpy()
            target = (batch["is_target"].numpy() > 0) & batch["mask"].numpy()
            later = np.flip(np.cumsum(np.flip(target, 1), 1), 1) - target  # targets after each position
            for kind in range(NUM_KINDS):
                support[kind] += int(np.sum((kinds == kind) & (later > 0)))
    finally:
        path.coefficients.assign(saved)
    # Neutral exposures (a partial view) say neither "engaged" nor "rejected": left out.
    label = np.concatenate(labels)
    keep = label != int(Label.NEUTRAL)
    return {
        "base": np.concatenate(base).astype(np.float64)[keep],
        "unit": np.concatenate(unit).astype(np.float64)[keep],
        "positive": label[keep] == int(Label.POSITIVE),
        "support": support,
    }


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

    An explicit kind with fewer than `min_support` examples gets, on its own part, the
    item-level kind's id strength when that kind is supported (else the largest strength of any
    supported explicit kind). Skips are left as fitted. Returns (strengths, names of the kinds
    that borrowed).
    """
    out = np.array(strengths, np.float32)
    supported = [k for k in (ITEM_KIND, CREATOR_KIND, CATEGORY_KIND) if support[k] >= min_support]
    if not supported:
        return out, []
    strength = (
        float(out[ITEM_KIND, 0]) if ITEM_KIND in supported else float(max(out[k].max() for k in supported))
    )
    borrowed = []
    for kind in (CREATOR_KIND, CATEGORY_KIND):
        if support[kind] < min_support:
            out[kind] = np.asarray(OWN_PARTS[kind], np.float32) * strength
            borrowed.append(KIND_NAMES[kind])
    return out, borrowed


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
      strengths (logit units with `negative_path_units="logit"`), "trained": the strengths
      training left, "support": {kind: examples}, "borrowed": [kinds], "temperature", "bias",
      "log_loss": {"without_path", "fitted"}, "valid_ndcg@10": {"without_path", "fitted",
      "kept"}, "scale": the factor the NDCG budget applied to the fitted strengths}.
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
    trained = path.strengths().numpy()
    allowed = path.allowed.numpy() > 0
    allowed[SKIP_KIND] &= path.skips  # skips act through the path only when it lets them
    terms = exposure_terms(model, batches)
    fit = fit_strengths(terms["base"], terms["unit"], terms["positive"], allowed)
    fitted, borrowed = borrowed_strengths(fit["strengths"], terms["support"], m.reaction_min_support)

    def ndcg_at(strengths: np.ndarray) -> float:
        path.coefficients.assign(strengths / path.scale)
        return validation_ndcg(model, data_dir, model.config.train.eval_k)

    without, full = ndcg_at(np.zeros_like(fitted)), ndcg_at(fitted)
    floor = without * (1.0 - m.reaction_ndcg_budget)
    scale, kept = 1.0, full
    if full < floor:  # the largest scale in [0, 1] within the budget, by bisection
        low, high, kept = 0.0, 1.0, without
        for _ in range(BUDGET_STEPS):
            middle = (low + high) / 2
            value = ndcg_at(fitted * middle)
            if value >= floor:
                low, kept = middle, value
            else:
                high = middle
        scale = low
    strengths = (fitted * scale).astype(np.float32)
    path.coefficients.assign(strengths / path.scale)
    record = {
        "strengths": np.round(strengths, 4).tolist(),
        "trained": np.round(trained, 4).tolist(),
        "support": {name: int(n) for name, n in zip(KIND_NAMES, terms["support"], strict=True)},
        "borrowed": borrowed,
        "exposures": int(len(terms["base"])),
        "temperature": round(fit["temperature"], 4),
        "bias": round(fit["bias"], 4),
        "log_loss": {"without_path": round(fit["loss_without"], 5), "fitted": round(fit["loss"], 5)},
        "valid_ndcg@10": {
            "without_path": round(without, 5),
            "fitted": round(full, 5),
            "kept": round(kept, 5),
        },
        "scale": round(scale, 4),
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
        f"{record['log_loss']['without_path']:.4f} -> {record['log_loss']['fitted']:.4f}; valid "
        f"ndcg@10 {without:.4f} without the path, {kept:.4f} with it (scale {scale:.2f}); {shown}"
        + (f"; borrowed: {', '.join(borrowed)}" if borrowed else "")
    )
    return record


def apply_reaction(model: NTRModel, record: dict) -> None:
    """Set `model.negative_path`'s strengths to a `fit_reaction` record's."""
    strengths = np.asarray(record["strengths"], np.float32)
    if strengths.shape != (NUM_KINDS, 3):
        raise ValueError(f"a reaction record holds [{NUM_KINDS}, 3] strengths, not {list(strengths.shape)}.")
    model.negative_path.coefficients.assign(strengths / model.negative_path.scale)
