"""README and CI agree: .ci/run runs exactly the README's test command."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert len(ci) == 1
    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```")[0].strip() for b in readme.split("```bash\n")[1:]]
    assert blocks[1] == ci[0]  # the second set-up command is the test command
    assert blocks[0].endswith("ntr demo")
