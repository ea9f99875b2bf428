"""Fitting the reaction on validation: the estimator on data with known strengths, borrowing for
kinds the log never states, and the fit recorded by training and read back by load_trained."""

import json

import numpy as np

from ntr.retrieval.reaction import borrowed_strengths, fit_strengths
from ntr.retrieval.train import load_trained, train
from tests.retrieval.conftest import tiny_config


def test_fit_recovers_known_strengths():
    """Exposures drawn from sigmoid(a (base - unit . b) + c) with a=0.5, c=-0.2, b=(1.5, 0.0):
    the bounded fit finds them (the true b2 is 0, at its bound)."""
    rng = np.random.default_rng(0)
    n = 40_000
    base = rng.normal(0.0, 2.0, n)
    unit = np.zeros((n, 2, 1))
    unit[:, 0, 0] = rng.binomial(1, 0.3, n) * rng.uniform(0.5, 1.5, n)
    unit[:, 1, 0] = rng.binomial(1, 0.3, n) * rng.uniform(0.5, 1.5, n)
    z = 0.5 * (base - 1.5 * unit[:, 0, 0]) - 0.2
    positive = rng.random(n) < 1.0 / (1.0 + np.exp(-z))
    fit = fit_strengths(base, unit, positive, np.ones((2, 1), bool))
    assert abs(fit["temperature"] - 0.5) < 0.03 and abs(fit["bias"] + 0.2) < 0.05
    assert abs(fit["strengths"][0, 0] - 1.5) < 0.15
    assert 0.0 <= fit["strengths"][1, 0] < 0.1
    assert fit["loss"] < fit["loss_without"]


def test_fit_keeps_disallowed_strengths_at_zero_and_never_negative():
    rng = np.random.default_rng(1)
    n = 5_000
    base = rng.normal(size=n)
    unit = rng.binomial(1, 0.5, (n, 1, 2)).astype(float)
    # Exposures of the group are *more* positive: the unbounded estimate would be negative.
    positive = rng.random(n) < 1.0 / (1.0 + np.exp(-(base + unit[:, 0, 0])))
    fit = fit_strengths(base, unit, positive, np.array([[True, False]]))
    assert fit["strengths"][0, 0] == 0.0 and fit["strengths"][0, 1] == 0.0


def test_borrowed_strengths_by_hand():
    strengths = np.array([[0.8, 0.3, 0.1], [0, 0, 0], [0, 0, 0.5], [0, 0, 0]], np.float32)
    support = np.array([100, 3, 50, 0])
    out, borrowed = borrowed_strengths(strengths, support, min_support=20)
    assert borrowed == ["creator"]
    # The creator kind takes the item-level kind's summed strength (the disliked item's own
    # drop, 0.8 + 0.3 + 0.1) on its own (creator) part.
    np.testing.assert_allclose(out[1], [0.0, 1.2, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(out[2], strengths[2])  # supported: kept
    np.testing.assert_array_equal(out[0], strengths[0])
    # Nothing supported: nothing to borrow from.
    same, none = borrowed_strengths(strengths, np.zeros(4, int), min_support=20)
    assert none == [] and np.array_equal(same, strengths)
    # No item-level support: the largest summed strength of a supported explicit kind.
    out, borrowed = borrowed_strengths(strengths, np.array([0, 0, 50, 0]), min_support=20)
    assert borrowed == ["creator"] and out[1, 1] == np.float32(0.5)


def test_training_records_the_fit_and_load_trained_applies_it(tiny_data, tmp_path):
    model_dir = str(tmp_path / "fitted")
    lines = []
    summary = train(tiny_config("ntr_fitted"), tiny_data, model_dir, log=lines.append)
    record = json.loads((tmp_path / "fitted" / "config.json").read_text())["reaction"]
    assert summary["reaction"] == record
    assert any(line.startswith("reaction fitted on") for line in lines)
    strengths = np.array(record["strengths"])
    assert strengths.shape == (4, 3) and np.all(strengths >= 0)
    assert record["exposures"] > 0 and set(record["support"]) == {"item", "creator", "category", "skip"}
    ndcg = record["valid_ndcg@10"]
    assert ndcg["kept"] >= ndcg["without_path"] * (1 - 0.01) - 1e-9  # the budget holds
    assert record["decay"] in (0.5, 0.7, 0.85, 0.95, 1.0)
    assert record["log_loss"]["fitted"] <= record["log_loss"]["without_path"] + 1e-9
    model = load_trained(model_dir, tiny_data)
    np.testing.assert_allclose(model.negative_path.strengths().numpy(), strengths, atol=1e-4)
    assert model.negative_path.decay == record["decay"]


def test_with_the_path_at_zero_the_fitted_variant_trains_as_positives_only(tiny_data, tmp_path):
    """ntr_fitted's Transformer reads what positives_only reads and its path stays at 0 in
    training, so the two train to the same weights; only the fitted path tells them apart."""
    plain = train(tiny_config("positives_only"), tiny_data, str(tmp_path / "p"), log=lambda _: None)
    fitted = train(tiny_config("ntr_fitted"), tiny_data, str(tmp_path / "f"), log=lambda _: None)
    # The record rounds to 5 decimals.
    assert abs(plain["valid_ndcg@10"] - fitted["reaction"]["valid_ndcg@10"]["without_path"]) < 1e-5
    a = load_trained(str(tmp_path / "p"), tiny_data).candidate_embeddings().numpy()
    b = load_trained(str(tmp_path / "f"), tiny_data).candidate_embeddings().numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fast_ranking_equals_the_real_validation_ranking(tiny_data, tmp_path):
    """ranking_ndcg (queries rebuilt from the path's unit terms) gives validation_ndcg's figure
    for any strengths and decay, and exposure_loss at the fitted strengths is the fit's loss."""
    from ntr.retrieval.data import sequence_dataset
    from ntr.retrieval.evaluate import validation_ndcg
    from ntr.retrieval.reaction import apply_reaction, exposure_fit, exposure_loss, path_terms, ranking_ndcg

    model_dir = str(tmp_path / "m")
    train(tiny_config("ntr_fitted", ("model.fit_reaction=false",)), tiny_data, model_dir, log=lambda _: None)
    model = load_trained(model_dir, tiny_data)
    batches = [
        {k: v for k, v in b.items() if k != "user_id"}
        for b in sequence_dataset(tiny_data, "valid", 64, model.config.model.max_len)
    ]
    terms = path_terms(model, batches, (0.5, 1.0))
    candidates = model.candidate_embeddings().numpy()
    rng = np.random.default_rng(0)
    for decay in (0.5, 1.0):
        strengths = rng.uniform(0.0, 3.0, (4, 3)) * model.negative_path.allowed.numpy()
        apply_reaction(model, {"strengths": strengths, "decay": decay})
        real = validation_ndcg(model, tiny_data)
        assert abs(ranking_ndcg(terms, candidates, decay, strengths) - real) < 1e-6
    fit = exposure_fit(terms, 0.5, np.ones((4, 3), bool))
    assert abs(exposure_loss(terms, 0.5, fit["strengths"]) - fit["loss"]) < 1e-6
    assert abs(exposure_loss(terms, 0.5, np.zeros((4, 3))) - fit["loss_without"]) < 1e-6
