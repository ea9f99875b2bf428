"""The `ntr` command line: help for every command, the tiny demo end to end, clear errors."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from ntr.cli.main import COMMANDS, build_parser, main


def test_console_script_help():
    # The script sits beside the interpreter that runs the tests (a venv need not be on PATH).
    beside = os.path.join(os.path.dirname(sys.executable), "ntr")
    exe = beside if os.path.exists(beside) else shutil.which("ntr")
    assert exe, "the ntr console script is not installed: run pip install -e ."
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_is_documented(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    sub = build_parser()[1][command]
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in text
        assert action.help, f"{command} {action.option_strings} has no help text"


def test_tiny_demo_then_preprocess_again(tmp_path, capsys):
    workdir = str(tmp_path / "w")
    assert main(["demo", "--workdir", workdir, "--scale", "tiny", "--seed", "1", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "reconciled: True" in out and f"{workdir}/data" in out
    # The three variants trained, evaluated, and compared in one table; the responsive one
    # carries its reaction fitted on validation.
    for variant in ("positives_only", "ntr", "ntr_fitted"):
        report = json.loads((tmp_path / "w" / "reports" / f"evaluation-{variant}.json").read_text())
        assert report["variant"] == variant and report["split"] == "test"
        for name in ("ndcg@10", "recall@10", "neghit@10", "delta_hr@10", "auc", "fhr@10"):
            assert set(report["metrics"][name]) == {"mean", "se", "n"}
        assert 0 <= report["metrics"]["ndcg@10"]["mean"] <= report["metrics"]["recall@10"]["mean"] <= 1
        # The world logs a random slice and every exposure's propensity: both readings are there.
        assert report["random_slice"]["n"] > 0 and set(report["random_slice"]["auc"]) == {"mean", "se", "n"}
        ope = report["off_policy"]
        assert ope["n"] > 0 and ope["k"] == 10 and 0 < ope["effective_n"] <= ope["n"]
        for reward in ("dislike_rate", "skip_rate", "watch_seconds"):
            for estimate in ope[reward].values():
                assert estimate["ci95"][0] <= estimate["ci95"][1]
            assert ope[reward]["ipw"]["mean"] >= 0 and ope[reward]["snipw"]["mean"] >= 0
        assert (tmp_path / "w" / "models" / variant / "saved_model" / "saved_model.pb").exists()
        assert report["windows"] == {
            "in_split": report["windows"]["ranked"],
            "share": 1.0,
            "ranked": report["windows"]["ranked"],
        }
    # --max-windows ranks a fixed user sample and the report says how much of the split it saw.
    sampled = str(tmp_path / "sampled.json")
    assert (
        main(
            ["evaluate", "--workdir", workdir, "--variant", "ntr", "--max-windows", "20", "--output", sampled]
        )
        == 0
    )
    windows = json.loads(open(sampled, encoding="utf-8").read())["windows"]
    assert windows["share"] == 20 / windows["in_split"] and 0 < windows["ranked"] < windows["in_split"]
    assert "ranked a fixed sample" in capsys.readouterr().out
    fitted = json.loads((tmp_path / "w" / "models" / "ntr_fitted" / "config.json").read_text())
    assert len(fitted["reaction"]["strengths"]) == 4 and "export" in fitted
    # The simulation ran on every variant and wrote the report.
    simulation = json.loads((tmp_path / "w" / "reports" / "simulation.json").read_text())
    assert set(simulation["counterfactual"]) == {"positives_only", "ntr", "ntr_fitted"}
    assert set(simulation["closed_loop"]) == {
        "positives_only",
        "positives_only+filters",
        "ntr",
        "ntr+filters",
        "ntr_fitted",
        "ntr_fitted+filters",
    }
    assert "simulation.html" in out and (tmp_path / "w" / "reports" / "simulation.html").exists()
    table = out.split("test split")[1]
    assert "positives_only" in out and "neghit@10" in table and "delta_hr@10" in table
    # Each row says which way is better; each variant gets a verdict against positives_only.
    assert "lower better: next explicit dislikes" in table and "higher better" in table
    for variant in ("ntr", "ntr_fitted"):
        assert f"{variant} against positives_only: ndcg@10 " in table
    stats = json.loads((tmp_path / "w" / "data" / "stats.json").read_text())
    world = json.loads((tmp_path / "w" / "raw" / "world.json").read_text())
    assert stats["rows_in"] == world["summary"]["events"] == stats["rows_out"]
    assert stats["labels"] == {k: world["summary"]["labels"].get(k, 0) for k in stats["labels"]}
    # A re-run with other flags replaces the outputs rather than mixing with them, and clears
    # what a killed run leaves behind (Beam temp directories).
    (tmp_path / "w" / "data" / "beam-temp-train-killed").mkdir()
    assert main(["preprocess", "--workdir", workdir, "--split-mode", "global_time", "--num-shards", "2"]) == 0
    assert len(list((tmp_path / "w" / "data").glob("train-*-of-00002.tfrecord.gz"))) == 2
    assert not list((tmp_path / "w" / "data").glob("train-*-of-00001.tfrecord.gz"))
    assert not list((tmp_path / "w" / "data").glob("beam-temp-*"))


def test_errors_say_what_to_do(tmp_path, capsys):
    assert main(["preprocess", "--workdir", str(tmp_path), "--source", "ml100k"]) == 2
    assert "needs --data" in capsys.readouterr().err
    assert main(["preprocess", "--workdir", str(tmp_path)]) == 2
    assert "ntr generate" in capsys.readouterr().err
    # A wrong --events path is a typo to fix, not a world to generate; nothing is left behind.
    assert main(["preprocess", "--workdir", str(tmp_path), "--events", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "ntr generate" not in err
    assert not (tmp_path / "data").exists()
    with pytest.raises(SystemExit):
        main(["generate", "--no-such-flag"])
    assert main(["train", "--workdir", str(tmp_path), "--set", "model.dims=3"]) == 2
    assert "unknown field 'model.dims'" in capsys.readouterr().err
    assert main(["train", "--workdir", str(tmp_path), "--set", "dim=3"]) == 2
    assert "model.dim=32" in capsys.readouterr().err
    assert main(["evaluate", "--workdir", str(tmp_path)]) == 2
    assert "run `ntr train` first" in capsys.readouterr().err


def test_preprocess_of_a_public_dataset_keeps_its_catalogue(tmp_path):
    """On a fresh work directory the reader writes raw/items.jsonl, and the pipeline must use it
    (it used to run without it: no categories, no creators)."""
    from tests.pipelines.test_readers import write_movielens

    lines = "".join(f"{u}\t{i}\t{r}\t{881250949 + 10 * k}\n" for k, (u, i, r) in enumerate(
        [(u, i, r) for u in range(1, 4) for i, r in ((1, 4), (2, 2), (1, 5), (2, 4))]
    ))  # fmt: skip
    folder = write_movielens(tmp_path / "ml", lines)
    creators = tmp_path / "directors.csv"
    creators.write_text("movie_id,verified,directors\n1,1,Ann Lee\n2,1,Bo Chan|X\n")
    workdir = tmp_path / "w"
    args = ["preprocess", "--workdir", str(workdir), "--source", "ml100k", "--data", str(folder)]
    assert main([*args, "--creators", str(creators), "--holdout-events", "1"]) == 0
    vocab = workdir / "data" / "vocab"
    assert (vocab / "categories.txt").read_text().split() == ["Action", "Comedy"]
    assert (vocab / "creators.txt").read_text().splitlines() == ["Ann Lee", "Bo Chan"]


def _one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ntr ")]
    assert len(err) == 1, err
    return err[0]


def test_unusable_data_ends_in_one_clear_line(tmp_path, capsys):
    from tests.conftest import event, write_jsonl

    # A CSV whose header lacks the needed columns: refused before anything is written.
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    workdir = tmp_path / "w"
    assert main(["preprocess", "--workdir", str(workdir), "--events", str(bad)]) == 2
    assert "lacks ['user_id', 'item_id', 'timestamp', 'action']" in _one_line_error(capsys)
    assert not workdir.exists()
    # Rows that all fail validation (JSONL without user ids): the dead letters say why.
    rows = tmp_path / "rows.jsonl"
    write_jsonl(rows, [{"item_id": "i1", "timestamp": 1, "action": "view"}] * 3)
    assert main(["preprocess", "--workdir", str(workdir), "--events", str(rows)]) == 2
    line = _one_line_error(capsys)
    assert "all 3 rows went to the dead letters" in line and "dead_letter-*.jsonl" in line
    # A log too small for one window: preprocess says so (exit 2), and so does train.
    small = tmp_path / "small.jsonl"
    write_jsonl(small, [event(f"u{u}", "i1", 100 + u) for u in range(4)])
    assert main(["preprocess", "--workdir", str(workdir), "--events", str(small)]) == 2
    assert "0 training windows from 4 events of 4 users" in _one_line_error(capsys)
    assert main(["train", "--workdir", str(workdir)]) == 2
    assert "training needs train and valid ones" in _one_line_error(capsys)
    assert not (workdir / "models").exists()


def test_only_flags_beam_knows_pass_through(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["preprocess", "--workdir", str(tmp_path), "--skipms", "1000"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --skipms 1000 (did you mean --skip-ms?)" in err
    assert err.startswith("usage: ntr preprocess")  # the command's usage, not the top level's
    with pytest.raises(SystemExit):
        main(["train", "--bogus"])
    assert capsys.readouterr().err.startswith("usage: ntr train")
    # Real Beam flags reach Beam (the run then stops at the missing input, not at the flags).
    beam = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode", "in_memory"]
    assert main(["preprocess", "--workdir", str(tmp_path), *beam]) == 2
    assert "No events at" in capsys.readouterr().err


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"ntr {version('ntr')}"


def test_help_gives_each_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["preprocess", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default WORKDIR/raw/events.jsonl) (default: None)" not in text
    assert "(default: None)" not in text
    assert "(default: 10)" in text  # --holdout-events still shows its default
