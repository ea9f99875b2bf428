"""Token features, the query-position rule, variant switches, group masks and ranking."""

import numpy as np
import pytest

from ntr.pipelines.events import Label
from ntr.retrieval import evaluate
from ntr.retrieval.data import NUM_RESERVED, sequence_dataset
from ntr.retrieval.evaluate import rank_targets
from ntr.retrieval.features import dwell_bucket, gap_bucket
from ntr.retrieval.items import load_item_table
from ntr.retrieval.model import NTRModel, previous_position
from ntr.tfenv import tf
from tests.retrieval.conftest import TINY_MAX_LEN, tiny_config


def test_dwell_and_gap_buckets():
    watch = tf.constant([[-1, 500, 5_000, 30_000, 20_000]], tf.int64)
    duration = tf.constant([[10_000, 10_000, 10_000, 40_000, -1]], tf.int64)
    # unknown -> 0; ratios 0.05 -> 1, 0.5 -> 4 (0.5 is a boundary: buckets are [lo, hi)),
    # 0.75 -> 5; unknown duration, 20 s -> seconds bucket 7 + 2 = 9.
    assert dwell_bucket(watch, duration).numpy().tolist() == [[0, 1, 4, 5, 9]]
    ts = tf.constant([[100, 101, 200, 200 + 86_400, 0]], tf.int64)
    mask = tf.constant([[True, True, True, True, False]])
    # first -> 0; 1 s -> 1; 99 s -> 4 (60..600); 1 day -> 8 (86400..7d); padding -> 0
    assert gap_bucket(ts, mask).numpy().tolist() == [[0, 1, 4, 8, 0]]


def test_previous_position():
    attend = tf.constant([[True, False, True, True, False], [False, False, True, False, False]])
    assert previous_position(attend).numpy().tolist() == [[-1, 0, 0, 2, 3], [-1, -1, -1, 2, 2]]


def _first_batch(data_dir, n=16):
    return next(iter(sequence_dataset(data_dir, "train", n, TINY_MAX_LEN)))


def test_hidden_negatives_do_not_reach_the_query(tiny_data):
    """positives_only must not see negatives: editing a negative event changes nothing for it,
    while neg_features_only (same weights) does react."""
    table = load_item_table(tiny_data)
    batch = _first_batch(tiny_data)
    label = batch["label"].numpy()
    negative = (label == int(Label.EXPLICIT_NEGATIVE)) | (label == int(Label.IMPLICIT_NEGATIVE))
    assert negative.any()
    edited = dict(
        batch,
        item=tf.where(negative, NUM_RESERVED, batch["item"]),
        action=tf.where(negative, 2, batch["action"]),
    )
    for variant, should_change in (("positives_only", False), ("neg_features_only", True)):
        model = NTRModel(tiny_config(variant), table)
        before = model.target_queries(batch)
        after = model.target_queries(edited)
        keep = before["label"].numpy() == int(Label.POSITIVE)
        diff = np.abs(before["query"].numpy()[keep] - after["query"].numpy()[keep]).max()
        assert (diff > 1e-6) == should_change, (variant, diff)


def test_group_mask_by_reason_granularity(tiny_data):
    table = load_item_table(tiny_data)
    model = NTRModel(tiny_config("group_ntr"), table)
    reasons = ["topic", "creator", "quality"]
    reason_ids = tf.constant([table_reason_id(tiny_data, r) for r in reasons])
    target = NUM_RESERVED + 5
    items = tf.constant([target] * 3)
    candidates = tf.range(NUM_RESERVED, table.num_items + NUM_RESERVED)
    mask = model.group_mask(items, reason_ids, candidates).numpy()
    tokens = candidates.numpy()
    same_creator = table.item_creator[tokens] == table.item_creator[target]
    cats = set(table.item_categories[target][table.item_categories[target] > 0].tolist())
    same_category = np.array([bool(cats & set(table.item_categories[t].tolist())) for t in tokens])
    np.testing.assert_array_equal(mask[0], same_category)  # topic -> category
    np.testing.assert_array_equal(mask[1], same_creator)  # creator -> creator
    assert not mask[2].any()  # quality -> the item alone: no group
    assert mask[0].sum() > mask[1].sum() > 1


def table_reason_id(data_dir, reason):
    from ntr.retrieval.data import load_vocab

    return load_vocab(data_dir, "reasons").index(reason) + NUM_RESERVED


@pytest.mark.parametrize("chunk_queries", [None, 3])
def test_rank_targets_against_numpy_oracle(tiny_data, monkeypatch, chunk_queries):
    model = NTRModel(tiny_config("ntr"), load_item_table(tiny_data))
    if chunk_queries:  # a batch's targets ranked 3 at a time, as a large catalogue forces
        monkeypatch.setattr(evaluate, "RANK_CHUNK_ELEMENTS", chunk_queries * model.num_items)
    ranked = rank_targets(model, tiny_data, "test", batch_size=8, k_max=7)
    cands = model.candidate_embeddings().numpy()
    batches = list(sequence_dataset(tiny_data, "test", 8, TINY_MAX_LEN))
    offset, checked = 0, 0
    for batch in batches:
        t = model.target_queries(batch)
        scores = t["query"].numpy() @ cands.T
        for i in range(scores.shape[0]):
            row, pos, item = int(t["row"][i]), int(t["position"][i]), int(t["item"][i])
            s = scores[i].copy()
            for h in batch["item"].numpy()[row, :pos]:
                if h >= NUM_RESERVED and h != item:
                    s[h - NUM_RESERVED] = -np.inf
            j = checked
            target = s[item - NUM_RESERVED]
            assert ranked.row[j] == row + offset and ranked.position[j] == pos
            assert ranked.rank[j] == int((s > target).sum())
            finite = s[np.isfinite(s)]
            log_p = target - (finite.max() + np.log(np.exp(finite - finite.max()).sum()))
            assert ranked.log_p[j] == pytest.approx(log_p, abs=1e-4)
            assert set(ranked.top[j].tolist()) == set(
                (np.argsort(-s, kind="stable")[:7] + NUM_RESERVED).tolist()
            )
            checked += 1
        offset += batch["item"].shape[0]
    assert checked == len(ranked.rank) > 50


def test_loss_is_finite_for_every_variant(tiny_data):
    table = load_item_table(tiny_data)
    batch = _first_batch(tiny_data)
    losses = {}
    for variant in ("positives_only", "neg_features_only", "ntr", "ntr_reasons", "group_ntr"):
        losses[variant] = float(NTRModel(tiny_config(variant), table).compute_loss(batch))
        assert np.isfinite(losses[variant]) and losses[variant] > 0
    # Same initial weights: the NTR terms only add to the positive loss.
    assert losses["ntr"] > losses["neg_features_only"]
    sampled = NTRModel(
        tiny_config("ntr", ('model.softmax="sampled"', "model.num_uniform_candidates=20")), table
    )
    assert np.isfinite(float(sampled.compute_loss(batch)))
    # NTR in its top-K form also only adds to the positive loss (same initial weights).
    topk = NTRModel(tiny_config("ntr", ('model.ntr_form="topk"', "model.ntr_topk=5")), table)
    assert float(topk.compute_loss(batch)) > losses["neg_features_only"]


@pytest.mark.parametrize("form", ["target", "corpus", "topk"])
def test_history_loss_matches_a_numpy_oracle(tiny_data, form):
    """History-side NTR of a real batch, recomputed pair by pair in NumPy from the model's own
    states and item embeddings (groups from the item table, the target left out of its group)."""
    table = load_item_table(tiny_data)
    config = tiny_config(
        "ntr_history",
        (
            f'model.history_form="{form}"',
            "model.history_decay=0.7",
            "model.history_weight=2.0",
            "model.history_topk=7",
        ),
    )
    model = NTRModel(config, table)
    batch = _first_batch(tiny_data)
    states, query_pos = model.states(batch)
    candidates = model.candidate_tokens
    got = float(model.history_loss(batch, states, query_pos, candidates, model.item_tower(candidates), None))

    f = {k: v.numpy() for k, v in batch.items()}
    states, query_pos = states.numpy(), query_pos.numpy()
    emb = model.item_tower(candidates).numpy()
    creator, cats = table.item_creator, table.item_categories
    m = config.model
    expected, pairs = 0.0, {"item": 0, "group": 0}
    for b in range(f["item"].shape[0]):
        for t in range(f["item"].shape[1]):
            target = f["item"][b, t]
            if not (
                f["is_target"][b, t] and f["mask"][b, t] and query_pos[b, t] >= 0 and target >= NUM_RESERVED
            ) or f["label"][b, t] != int(Label.POSITIVE):
                continue
            logits = states[b, query_pos[b, t]] @ emb.T
            for s in range(t):
                source, label = f["item"][b, s], f["label"][b, s]
                if not f["mask"][b, s] or source < NUM_RESERVED:
                    continue
                if label == int(Label.EXPLICIT_NEGATIVE):
                    w, gran = m.history_weight, table.reason_granularity[f["reason"][b, s]]
                elif label == int(Label.IMPLICIT_NEGATIVE):
                    w, gran = m.history_implicit_weight, 0
                else:
                    continue
                tokens = np.arange(NUM_RESERVED, NUM_RESERVED + table.num_items)
                if gran == 1:
                    group = (creator[tokens] == creator[source]) & (creator[source] > 0)
                elif gran == 2:
                    mine = {c for c in cats[source] if c > 0}
                    group = np.array([bool(mine & set(cats[tok])) for tok in tokens])
                else:
                    group = tokens == source
                group &= tokens != target
                if not group.any():
                    continue
                pairs["group" if gran else "item"] += 1
                mass = np.logaddexp.reduce(logits[group])
                if form == "corpus":
                    normaliser = np.logaddexp.reduce(logits)
                elif form == "topk":
                    normaliser = np.logaddexp(mass, np.sort(logits)[-m.history_topk])
                else:
                    normaliser = np.logaddexp(mass, logits[target - NUM_RESERVED])
                expected += -w * m.history_decay ** (t - s - 1) * np.log1p(-np.exp(mass - normaliser))
    assert pairs["item"] > 0 and pairs["group"] > 0, pairs  # the batch exercises both paths
    assert got == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("trains_items", [True, False])
def test_history_loss_trains_items_only_when_asked(tiny_data, trains_items, request):
    """Same value either way; with history_trains_items=false no gradient reaches the item
    tower's creator / category tables (tokens are id-only here, so only the loss's G and
    target embeddings use them)."""
    table = load_item_table(tiny_data)
    extra = ("model.token_item_features=false", "model.negative_path=false")
    batch = _first_batch(tiny_data)
    values = {}
    # A global seed outlives the test and changes every later seeded tf.data shuffle (so later
    # tests' training runs): clear it afterwards.
    request.addfinalizer(lambda: tf.random.set_seed(None))
    for flag in (True, trains_items):
        tf.keras.utils.set_random_seed(3)
        model = NTRModel(
            tiny_config("ntr_history", extra + (f"model.history_trains_items={str(flag).lower()}",)), table
        )
        candidates = model.candidate_tokens
        with tf.GradientTape() as tape:
            states, query_pos = model.states(batch)
            loss = model.history_loss(
                batch, states, query_pos, candidates, model.item_tower(candidates), None
            )
        tables = [
            model.item_tower.creator_embedding.embeddings,
            model.item_tower.category_embedding.embeddings,
        ]
        grads = tape.gradient(loss, tables)
        values[flag] = float(loss)
    moved = [g is not None and float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(g)))) > 0 for g in grads]
    assert moved == [trains_items, trains_items]
    assert values[trains_items] == pytest.approx(values[True], rel=1e-6)


def test_anchor_position():
    from ntr.retrieval.model import anchor_position

    anchor = tf.constant([[False, True, False, False, True], [True, False, False, False, False]])
    assert anchor_position(anchor).numpy().tolist() == [[-1, 1, 1, 1, 4], [0, 0, 0, 0, 0]]


def test_engaged_anchor_reads_the_last_non_negative_state(tiny_data):
    """With query_anchor=engaged and no negative path, the query after a trailing negative equals
    the query after the last engaged event: only the path may react to the negative."""
    table = load_item_table(tiny_data)
    model = NTRModel(tiny_config("neg_features_only", ('model.query_anchor="engaged"',)), table)
    batch = _first_batch(tiny_data)
    states, _ = model.states(batch)
    label, mask = batch["label"].numpy(), batch["mask"].numpy()
    negative = (label == int(Label.EXPLICIT_NEGATIVE)) | (label == int(Label.IMPLICIT_NEGATIVE))
    checked = 0
    for b, p in zip(*np.nonzero(negative & mask), strict=True):
        engaged = [q for q in range(p) if mask[b, q] and not negative[b, q]]
        if engaged:
            np.testing.assert_allclose(states.numpy()[b, p], states.numpy()[b, engaged[-1]], atol=1e-6)
            checked += 1
    assert checked > 0


def test_full_corpus_ntr_under_sampled_softmax(tiny_data):
    """ntr_candidates=full: the task's own NTR is off, and the model's is -w log(1 - p) with p
    over every item, checked against NumPy."""
    table = load_item_table(tiny_data)
    config = tiny_config("ntr", ('model.softmax="sampled"', 'model.ntr_candidates="full"'))
    model = NTRModel(config, table)
    assert model.task.explicit_weight == 0.0 and model.task.implicit_weight == 0.0
    targets = model.target_queries(_first_batch(tiny_data))
    got = float(model.full_corpus_ntr(targets))
    q, items, labels = (targets[k].numpy() for k in ("query", "item", "label"))
    logits = q @ model.candidate_embeddings().numpy().T
    log_p = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    weight = np.where(labels == int(Label.EXPLICIT_NEGATIVE), 1.0, 0.0)
    weight += np.where(labels == int(Label.IMPLICIT_NEGATIVE), 0.1, 0.0)
    p = np.exp(log_p[np.arange(len(items)), items - NUM_RESERVED])
    expected = float(np.sum(-weight * np.log1p(-p)))
    assert (weight > 0).sum() > 0
    assert got == pytest.approx(expected, rel=1e-4)


def test_xla_compiled_transformer_gives_the_same_states(tiny_data):
    """train.jit_compile runs the Transformer under XLA; with the same weights the states and
    the loss match the plain graph's."""
    table = load_item_table(tiny_data)
    batch = _first_batch(tiny_data)
    plain = NTRModel(tiny_config(), table)
    compiled = NTRModel(tiny_config(extra=("train.jit_compile=true",)), table)
    plain.compute_loss(batch)
    compiled.compute_loss(batch)  # builds the variables
    compiled.set_weights(plain.get_weights())
    assert getattr(compiled._encode, "_jit_compile", False) and not hasattr(plain._encode, "_jit_compile")
    want, _ = plain.states(batch)
    got, _ = compiled.states(batch)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        float(compiled.compute_loss(batch)), float(plain.compute_loss(batch)), rtol=1e-5
    )


def test_sampling_probability_by_hand():
    from ntr.retrieval.model import sampling_probability  # noqa: PLC0415

    log_share = tf.math.log(tf.constant([0.5, 0.001]))
    popularity = sampling_probability(log_share, tf.constant(100.0), 512, 100_000, "popularity")
    np.testing.assert_allclose(popularity.numpy(), [0.5, 0.001], rtol=1e-6)
    # Expected draws: 100 in-batch x share + 512 uniform / 100,000 items.
    mixture = sampling_probability(log_share, tf.constant(100.0), 512, 100_000, "mixture")
    np.testing.assert_allclose(mixture.numpy(), [50.00512, 0.10512], rtol=1e-6)
    with pytest.raises(ValueError, match="sampled_log_q"):
        tiny_config(extra=("model.sampled_log_q=uniform",))
