"""README and CI agree: .ci/run runs exactly the README's test command."""

import math
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    readme = (ROOT / "README.md").read_text()
    blocks = [b.split("```")[0].strip() for b in readme.split("```bash\n")[1:]]
    assert blocks[1] == ci[-1]  # the second set-up command is the test command
    # Before it, only the browser for the report's screenshot test is installed.
    assert all(line.startswith("command -v chromium") for line in ci[:-1]) and len(ci) <= 2
    assert blocks[0].endswith("ntr demo")


CHECK_SCORES = """
# The disliked (odd) items end up scored below the liked ones.
scores = model.user_tower(tf.constant(users)).numpy() @ model.item_tower(tf.constant(items)).numpy().T
odd = np.array([int(i[1:]) % 2 == 1 for i in items])
print("odd below even:", bool(scores[:, odd].mean() < scores[:, ~odd].mean()))
"""


def test_readme_plugin_example_runs(tmp_path):
    """The README's example of adding NTR to an existing tfrs.Model runs as written: towers,
    tiny data, 5 epochs of `fit`; the loss it prints is finite and goes down."""
    import ast
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("<!-- plugin-example -->\n```python\n")[1].split("```")[0]
    script = tmp_path / "plugin_example.py"
    script.write_text(snippet + CHECK_SCORES)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = out.stdout.split("loss per epoch:")[1].splitlines()[0]
    losses = ast.literal_eval(printed.strip())
    assert len(losses) == 5 and all(map(math.isfinite, losses)), losses
    assert losses[-1] < losses[0], losses
    assert "odd below even: True" in out.stdout
