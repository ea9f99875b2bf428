"""The synthetic world: determinism, schema, and that it behaves like the design says."""

import json

import numpy as np
import pytest

from ntr.pipelines.events import ACTIONS, REASONS, LabelConfig, label_event
from ntr.pipelines.validate import parse_event
from ntr.simulation.catalogue import load_kuairand_catalogue
from ntr.simulation.response import TRIGGERS
from ntr.simulation.world import WorldConfig, scaled_config, simulate, write_world


@pytest.fixture(scope="module")
def tiny_log():
    return simulate(scaled_config("tiny", seed=3))


def test_same_seed_identical_logs(tiny_log, tmp_path):
    again = simulate(scaled_config("tiny", seed=3))
    write_world(tiny_log, str(tmp_path / "a"))
    write_world(again, str(tmp_path / "b"))
    for name in ("events.jsonl", "items.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = simulate(scaled_config("tiny", seed=4))
    assert not np.array_equal(other.item[:100], tiny_log.item[:100])


def test_events_are_canonical_and_labels_match_pipeline(tiny_log):
    rule = LabelConfig()
    cfg = tiny_log.config
    assert len(tiny_log) >= cfg.n_users * cfg.min_events_per_user
    for row in tiny_log.event_rows():
        true_reason = row.pop("true_reason")
        parsed = parse_event(row)  # valid by the pipeline's own rules
        label, _ = label_event(parsed["action"], parsed["watch_ms"], parsed["duration_ms"], rule)
        if label.name.endswith("NEGATIVE"):
            assert true_reason in REASONS
        else:
            assert true_reason is None
        if label.name == "EXPLICIT_NEGATIVE":
            assert row["reason"] in TRIGGERS  # reason_given_share defaults to 1
    assert set(tiny_log.action) <= set(ACTIONS) - {"skip"}  # skips are views the rule recognises


def test_random_slice_and_propensities_are_logged():
    # Popularity policy: every logged propensity is share / N + (1 - share) * popularity, exactly.
    share = 0.25
    log = simulate(scaled_config("tiny", seed=5, policy="popularity", random_share=share))
    n_items = log.catalogue.n_items
    expected = share / n_items + (1 - share) * log.catalogue.popularity[log.item]
    np.testing.assert_allclose(log.propensity, expected, rtol=1e-12)
    n = len(log)
    assert abs(log.is_random.mean() - share) < 4 * np.sqrt(share * (1 - share) / n)
    rows = list(log.event_rows())
    assert [r["is_random"] for r in rows] == log.is_random.tolist()
    assert log.summary()["random_exposures"] == int(log.is_random.sum())
    # Without the slice nothing is random; the feed policy's propensities are probabilities.
    feed = simulate(scaled_config("tiny", seed=5, random_share=0.0))
    assert not feed.is_random.any() and ((feed.propensity > 0) & (feed.propensity <= 1)).all()
    # The mix policy has no closed form: the propensity is left out, not guessed.
    mix = simulate(scaled_config("tiny", seed=5, policy="mix"))
    assert np.isnan(mix.propensity).all() and {r["propensity"] for r in mix.event_rows()} == {None}
    with pytest.raises(ValueError, match="random_share"):
        WorldConfig(random_share=1.5)


def test_timestamps_increase_per_user(tiny_log):
    for user in range(tiny_log.config.n_users):
        ts = tiny_log.timestamp[tiny_log.user == user]
        assert (np.diff(ts) > 0).all()


def test_hidden_causes_drive_dislikes():
    log = simulate(WorldConfig(seed=1, n_users=300, n_items=800, n_creators=80, events_per_user=60))
    cat = log.catalogue
    explicit = log.label == "EXPLICIT_NEGATIVE"
    # Offensive dislikes only hit offensive items; quality dislikes only clickbait.
    assert cat.offensive[log.item[explicit & (log.true_reason == "offensive")]].all()
    assert cat.clickbait[log.item[explicit & (log.true_reason == "quality")]].all()
    summary = log.summary()
    assert 0.005 <= summary["explicit_negative_rate"] <= 0.03
    assert 0.15 <= summary["skip_rate"] <= 0.35
    assert json.dumps(summary)  # serialisable as world.json


def test_reason_given_share_hides_reasons():
    log = simulate(scaled_config("tiny", seed=0, reason_given_share=0.0))
    explicit = log.label == "EXPLICIT_NEGATIVE"
    assert explicit.any() and (log.reason[explicit] == "").all()
    assert (log.true_reason[explicit] != "").all()


def test_real_catalogue(tmp_path):
    csv = tmp_path / "video_features_basic_pure.csv"
    csv.write_text(
        "video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,"
        "server_height,music_id,music_type,tag\n"
        '0,77,NORMAL,2022-04-10,LongImport,0.0,87433.0,720,1280,9,9.0,39\n1,78,NORMAL,2022-04-10,Kmovie,0.0,,720,1280,6,9.0,"2,39"\n'
    )
    cat = load_kuairand_catalogue(str(tmp_path), np.random.default_rng(0), 0.1, 0.1)
    rows = list(cat.item_rows())
    assert (
        rows[0]["item_id"] == "k0" and rows[0]["creator_id"] == "a77" and rows[0]["categories"] == ["tag_39"]
    )
    assert (
        rows[1]["categories"] == ["tag_2", "tag_39"] and rows[1]["duration_ms"] == 30_000
    )  # unknown -> 30 s
    log = simulate(
        WorldConfig(seed=0, n_users=5, events_per_user=5, min_events_per_user=5, catalogue_path=str(tmp_path))
    )
    assert set(log.item) <= {0, 1}
    with pytest.raises(FileNotFoundError, match="kuairand_pure_meta"):
        load_kuairand_catalogue(str(tmp_path / "missing"), np.random.default_rng(0), 0.1, 0.1)
