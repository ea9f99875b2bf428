"""README and CI agree: .ci/run runs exactly the README's test command."""

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


PLUGIN_DRIVER = """
import numpy as np
from ntr.tfenv import tf

users = [f"u{i}" for i in range(20)]
items = [f"i{i}" for i in range(30)]
rng = np.random.default_rng(0)
user_col = rng.choice(users, 600)
item_col = rng.choice(items, 600)
# Users like even items and dislike odd ones: the label is learnable.
label_col = np.array([1 if int(i[1:]) % 2 == 0 else 2 for i in item_col])

def tower(vocab):
    lookup = tf.keras.layers.StringLookup(vocabulary=vocab)
    return tf.keras.Sequential([lookup, tf.keras.layers.Embedding(len(vocab) + 1, 8)])

model = MyRetrievalModel(tower(users), tower(items))
model.compile(optimizer=tf.keras.optimizers.Adagrad(0.5))
columns = {"user_id": user_col, "item_id": item_col, "label": label_col}
data = tf.data.Dataset.from_tensor_slices(columns).batch(60)
history = model.fit(data, epochs=5, verbose=0).history["loss"]
assert all(np.isfinite(history)) and history[-1] < history[0], history
# The disliked (odd) items end up scored below the liked ones.
scores = model.user_tower(tf.constant(users)).numpy() @ model.item_tower(tf.constant(items)).numpy().T
odd = np.array([int(i[1:]) % 2 == 1 for i in items])
assert scores[:, odd].mean() < scores[:, ~odd].mean()
print("plugin example ok")
"""


def test_readme_plugin_example_runs(tmp_path):
    """The ten-line example of adding NTR to an existing tfrs.Model trains and works."""
    import subprocess
    import sys

    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("<!-- plugin-example -->\n```python\n")[1].split("```")[0]
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 10  # "a ten-line example"
    script = tmp_path / "plugin_example.py"
    script.write_text(snippet + PLUGIN_DRIVER)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "plugin example ok" in out.stdout
