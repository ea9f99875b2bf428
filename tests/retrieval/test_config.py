"""The retriever config: variants as presets, overrides, files, and clear errors."""

import argparse
import json

import pytest

from ntr.cli.train import resolve_config
from ntr.retrieval.config import VARIANTS, RetrievalConfig, for_variant, with_overrides


def test_variants_only_preset_switches():
    base = RetrievalConfig()
    for name, switches in VARIANTS.items():
        config = for_variant(name)
        assert config.model.variant == name
        for field, value in switches.items():
            assert getattr(config.model, field) == value
        assert config.train == base.train and config.model.dim == base.model.dim
    assert not for_variant("positives_only").model.negative_inputs
    assert for_variant("group_ntr").model.group_ntr
    # The paper's recipe keeps the softmax form of NTR; ntr_history's negative targets use top-K.
    assert for_variant("ntr").model.ntr_form == "softmax"
    assert for_variant("ntr_history").model.ntr_form == "topk"


def test_round_trip_and_overrides():
    config = with_overrides(for_variant("ntr"), ["model.dim=32", "train.epochs=3", 'model.softmax="sampled"'])
    assert (config.model.dim, config.train.epochs, config.model.softmax) == (32, 3, "sampled")
    assert RetrievalConfig.from_dict(json.loads(config.to_json())) == config
    with pytest.raises(ValueError, match="unknown field"):
        with_overrides(config, ["model.nope=1"])
    with pytest.raises(ValueError, match="must look like"):
        with_overrides(config, ["epochs=3"])
    with pytest.raises(ValueError, match="multiple of num_heads"):
        with_overrides(config, ["model.dim=33"])
    with pytest.raises(ValueError, match="lazy_adam"):
        with_overrides(config, ["train.optimizer=sgd"])
    with pytest.raises(ValueError, match="unknown variant"):
        for_variant("ntr+reasons")


def test_cli_precedence_variant_then_file_then_set_then_flags(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps({"model": {"dim": 16, "num_heads": 4, "implicit_weight": 0.5}, "train": {"epochs": 7}})
    )
    args = argparse.Namespace(
        variant="ntr_reasons", config=str(path), set=["model.dim=24"], epochs=None, seed=5, strategy=None
    )
    config = resolve_config(args)
    assert config.model.reason_inputs and config.model.variant == "ntr_reasons"
    assert (config.model.dim, config.model.num_heads, config.model.implicit_weight) == (24, 4, 0.5)
    assert (config.train.epochs, config.train.seed) == (7, 5)
    path.write_text(json.dumps({"optimizer": {}}))
    with pytest.raises(ValueError, match="unknown section"):
        resolve_config(args)
