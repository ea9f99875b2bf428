"""The simulation report: its files, its content, and that a browser renders it with the plots."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from ntr.simulation.closed_loop import LoopMetrics
from ntr.simulation.counterfactual import CounterfactualConfig, run_counterfactual
from ntr.simulation.report import headline, write_report
from tests.simulation.test_closed_loop import response
from tests.simulation.test_counterfactual import RuleRanker, histories_on_multiples_of_three

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def results():
    config = CounterfactualConfig(
        num_pairs=100, k=4, min_prefix=2, neighbours=2, bootstrap=100, reasons=("creator", "topic")
    )
    counterfactual = {
        "positives_only": run_counterfactual(
            RuleRanker(ignore_negatives=True), histories_on_multiples_of_three(), config
        ),
        "ntr": run_counterfactual(RuleRanker(), histories_on_multiples_of_three(), config),
    }
    closed_loop = {}
    for arm, disliked in (("ntr", [True, False]), ("ntr+filters", [False, False])):
        metrics = LoopMetrics(num_users=2, steps=12)
        a = frozenset({1})
        for step in range(12):
            labels = ["EXPLICIT_NEGATIVE" if d else "POSITIVE" for d in disliked]
            metrics.record(step, np.array([[7, 8], [9, 9]]), [[a, a], [a, a]], np.array([7, 9]), [a, a],
                           response(disliked, labels, [1000 * (step + 1), 2000]))  # fmt: skip
        closed_loop[arm] = metrics.summary()
    return {
        "variants": ["positives_only", "ntr"],
        "counterfactual": counterfactual,
        "closed_loop": closed_loop,
        "closed_loop_config": {"num_users": 2, "steps": 12, "slate_size": 2, "choice": "top"},
        "summary": "hand-built rankers",
    }


def test_report_files_and_content(results, tmp_path):
    paths = write_report(results, str(tmp_path))
    assert json.loads((tmp_path / "simulation.json").read_text()) == json.loads(json.dumps(results))
    page = (tmp_path / "simulation.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # both plots embedded: the page stands alone
    assert (tmp_path / "responsiveness.png").stat().st_size > 10_000 and paths["closed_loop"].endswith(".png")
    # The rule ranker drops the whole creator on a creator dislike: -100% with a [−100%, −100%] interval.
    lines = headline(results)
    assert lines[0].startswith("positives_only: creator dislike -> same-creator share +0.0% [+0.0%, +0.0%]")
    assert "ntr: creator dislike -> same-creator share -100.0% [-100.0%, -100.0%]" in lines[1]
    assert "-60.8%" in page and "dislike as feature + NTR label" in page  # the reference points table
    # positives_only never reads a dislike: its reason rows are equal and the page says why;
    # the rule ranker acts on the reason, so its rows differ and it is not named.
    from ntr.simulation.report import reasonless

    assert reasonless(results["counterfactual"]["positives_only"])
    assert not reasonless(results["counterfactual"]["ntr"])
    assert "positives_only: the rows of every dislike reason are identical" in page
    assert "stays under 100% behind the filters" in page


def test_a_browser_renders_the_report_with_its_plots(results, tmp_path):
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip(
            "no chromium on this machine: the report was NOT checked in a browser (.ci/run installs it)"
        )
    paths = write_report(results, str(tmp_path))
    shot = tmp_path / "screenshot.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1300,2200", f"--screenshot={shot}", f"file://{paths['html']}"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    import matplotlib.image  # noqa: PLC0415

    pixels = matplotlib.image.imread(str(shot))[:, :, :3]
    assert pixels.shape[:2] == (2200, 1300)
    # The bars and curves use matplotlib's default blue (#1f77b4) and orange (#ff7f0e): seeing
    # both in the screenshot means the embedded plots were decoded and drawn, not just the text.
    for rgb in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):
        close = (np.abs(pixels * 255 - np.array(rgb)) < 30).all(-1)
        assert close.sum() > 200, f"colour {rgb} barely on screen: the plots did not render"
    print(f"report screenshot: {shot}")
