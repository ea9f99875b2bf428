"""Training throughput: our TF trainer step (plain graph, and with the Transformer under XLA)
vs a PyTorch nn.TransformerEncoder model (eager, and with `torch.compile`).

Same data (the same pre-loaded batches of the default world and, with --xl-workdir, of the
10^5-item world, where both train with the sampled softmax), same sizes (dim, blocks, heads,
feed-forward width, max_len, batch), same token features (item + action + reason + dwell + gap +
position), same item tower (item + creator + mean category), same loss (softmax on positive
targets, over every item or over sampled candidates as `model.softmax` picks for the catalogue,
+ NTR on negatives over the same candidates) and Adam. Measured in target tokens per second after a
warm-up (which includes each compiler's compilation), all in this one run, alternating rounds
so machine noise hits every trainer.

    python -m benchmarks.train_throughput [--workdir /tmp/ntr-bench-world] [--xl-workdir /tmp/ntr-bench-xl]
        [--steps 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks.common import tf_train_rate, train_batches, write_section
from ntr.pipelines.events import Label
from ntr.retrieval.config import for_variant, with_overrides
from ntr.retrieval.data import NUM_RESERVED
from ntr.retrieval.features import NUM_DWELL_BUCKETS, NUM_GAP_BUCKETS, dwell_bucket, gap_bucket
from ntr.retrieval.items import load_item_table
from ntr.retrieval.model import previous_position


def ensure_world(workdir: str) -> str:
    data = os.path.join(workdir, "data")
    if not os.path.exists(os.path.join(data, "stats.json")):
        from ntr.cli.main import main  # noqa: PLC0415

        main(["generate", "--workdir", workdir])
        main(["preprocess", "--workdir", workdir])
    return data


def load_batches(data: str, config, count: int) -> list[dict]:
    batches = train_batches(data, config, count)
    # Derived per-event features, computed once for both frameworks.
    for b in batches:
        b["dwell"] = dwell_bucket(b["watch_ms"], b["duration_ms"])
        b["gap"] = gap_bucket(b["timestamp"], b["mask"])
    return batches


def tf_rate(config, table, batches, steps: int, jit: bool = False) -> float:
    if jit:
        config = with_overrides(config, ["train.jit_compile=true"])
    inputs = [{k: v for k, v in b.items() if k not in ("dwell", "gap")} for b in batches[: 3 + steps]]
    targets, seconds = tf_train_rate(config, table, inputs)
    return targets / seconds


def torch_rate(config, table, batches, steps: int, compiled: bool = False) -> float:
    import torch  # noqa: PLC0415 (only this benchmark needs it)

    torch.manual_seed(config.train.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    m = config.model
    n_tokens = table.num_items + NUM_RESERVED

    class Reference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.item = torch.nn.Embedding(n_tokens, m.dim)
            self.action = torch.nn.Embedding(table.num_actions, m.dim)
            self.reason = torch.nn.Embedding(table.num_reasons, m.dim)
            self.dwell = torch.nn.Embedding(NUM_DWELL_BUCKETS, m.dim)
            self.gap = torch.nn.Embedding(NUM_GAP_BUCKETS, m.dim)
            self.position = torch.nn.Embedding(m.max_len, m.dim)
            self.creator = torch.nn.Embedding(table.num_creators, m.dim)
            self.category = torch.nn.Embedding(table.num_categories, m.dim, padding_idx=0)
            layer = torch.nn.TransformerEncoderLayer(
                m.dim, m.num_heads, m.ff_dim, m.dropout, activation="gelu", batch_first=True, norm_first=True
            )
            self.encoder = torch.nn.TransformerEncoder(layer, m.num_blocks, enable_nested_tensor=False)
            self.norm = torch.nn.LayerNorm(m.dim)
            self.item_creator = torch.as_tensor(table.item_creator, dtype=torch.long)
            self.item_categories = torch.as_tensor(table.item_categories, dtype=torch.long)

        def forward(self, b):
            pos = torch.arange(b["item"].shape[1])
            x = (
                self.item(b["item"]) * m.dim**0.5
                + self.action(b["action"])
                + self.reason(b["reason"])
                + self.dwell(b["dwell"])
                + self.gap(b["gap"])
                + self.position(pos)[None]
            )
            length = x.shape[1]
            causal = torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
            return self.norm(self.encoder(x, mask=causal, src_key_padding_mask=~b["mask"]))

        def candidates(self, ids):
            cats = self.item_categories[ids]
            present = (cats > 0).float().unsqueeze(-1)
            cat_mean = (self.category(cats) * present).sum(1) / present.sum(1).clamp(min=1.0)
            return self.item(ids) + self.creator(self.item_creator[ids]) + cat_mean

    model = Reference()
    sampled = not m.use_full_softmax(table.num_items)
    log_q = torch.as_tensor(table.item_log_q)
    all_items = torch.arange(NUM_RESERVED, n_tokens)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.learning_rate)
    # Like `train.jit_compile`, the compiler gets the fixed-shape encoder; the loss gathers a
    # data-dependent number of targets.
    encode = torch.compile(model) if compiled else model
    converted = []
    for b in batches:
        attend = b["mask"]
        converted.append(
            {
                "item": torch.as_tensor(b["item"].numpy(), dtype=torch.long),
                "action": torch.as_tensor(b["action"].numpy(), dtype=torch.long),
                "reason": torch.as_tensor(b["reason"].numpy(), dtype=torch.long),
                "dwell": torch.as_tensor(b["dwell"].numpy(), dtype=torch.long),
                "gap": torch.as_tensor(b["gap"].numpy(), dtype=torch.long),
                "mask": torch.as_tensor(b["mask"].numpy()),
                "label": torch.as_tensor(b["label"].numpy(), dtype=torch.long),
                "is_target": torch.as_tensor(b["is_target"].numpy()),
                "query_pos": torch.as_tensor(previous_position(attend).numpy(), dtype=torch.long),
            }
        )

    def step(b):
        states = encode(b)
        valid = (b["is_target"] > 0) & b["mask"] & (b["query_pos"] >= 0) & (b["item"] >= NUM_RESERVED)
        rows, cols = valid.nonzero(as_tuple=True)
        query = states[rows, b["query_pos"][rows, cols]]
        item = b["item"][rows, cols]
        label = b["label"][rows, cols]
        if sampled:  # as `NTRModel.compute_loss`: loss-carrying in-batch targets + uniform, logQ
            carries = label == int(Label.POSITIVE)
            if m.explicit_weight > 0:
                carries |= label == int(Label.EXPLICIT_NEGATIVE)
            if m.implicit_weight > 0:
                carries |= label == int(Label.IMPLICIT_NEGATIVE)
            in_batch = torch.where(carries, item, item[:1])
            uniform = torch.randint(NUM_RESERVED, n_tokens, (m.num_uniform_candidates,))
            ids, inverse = torch.unique(torch.cat([in_batch, uniform]), return_inverse=True)
            target = inverse[: len(item)]
            logits = query @ model.candidates(ids).T - log_q[ids - NUM_RESERVED]
        else:
            target = item - NUM_RESERVED
            logits = query @ model.candidates(all_items).T
        log_p = torch.log_softmax(logits, -1).gather(1, target[:, None])[:, 0]
        positive = label == int(Label.POSITIVE)
        weight = m.explicit_weight * (label == int(Label.EXPLICIT_NEGATIVE)) + m.implicit_weight * (
            label == int(Label.IMPLICIT_NEGATIVE)
        )
        log_1mp = torch.log(-torch.expm1(log_p.clamp(max=np.log1p(-1e-6))))
        loss = (-(log_p * positive).sum() - (weight * log_1mp).sum()) / positive.sum().clamp(min=1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return int(b["is_target"].sum())

    model.train()
    for b in converted[:3]:
        step(b)
    targets, start = 0, time.perf_counter()
    for b in converted[3 : 3 + steps]:
        targets += step(b)
    return targets / (time.perf_counter() - start)


def measure(data: str, steps: int, rounds: int) -> str:
    """The four trainers on `data`, alternating rounds; returns the markdown table."""
    config = for_variant("ntr")
    table = load_item_table(data)
    batches = load_batches(data, config, steps + 3)
    trainers = {
        "ntr (TF 2.20, tf.function step from `retrieval/train.py`)": lambda: tf_rate(
            config, table, batches, steps
        ),
        "ntr with `train.jit_compile=true` (Transformer under XLA)": lambda: tf_rate(
            config, table, batches, steps, jit=True
        ),
        "PyTorch 2.13 `nn.TransformerEncoder` (eager, norm_first)": lambda: torch_rate(
            config, table, batches, steps
        ),
        "PyTorch 2.13, encoder under `torch.compile` (inductor)": lambda: torch_rate(
            config, table, batches, steps, compiled=True
        ),
    }
    rates = {name: [] for name in trainers}
    for r in range(rounds):
        for name, rate in trainers.items():
            rates[name].append(rate())
        print(
            f"round {r + 1}: " + ", ".join(f"{v[-1]:,.0f}" for v in rates.values()) + " targets/s", flush=True
        )
    means = {name: float(np.mean(v)) for name, v in rates.items()}
    se = lambda a: np.std(a, ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0  # noqa: E731
    faster_torch = max(means[n] for n in means if n.startswith("PyTorch"))
    m = config.model
    softmax = (
        f"full-corpus softmax over {table.num_items:,} items"
        if m.use_full_softmax(table.num_items)
        else f"sampled softmax over {table.num_items:,} items (in-batch + {m.num_uniform_candidates} uniform, logQ)"
    )
    return (
        f"`{data}`, variant `ntr` ({softmax} + NTR), dim {m.dim}, {m.num_blocks} blocks, {m.num_heads} heads, "
        f"ff {m.ff_dim}, max_len {m.max_len}, batch {config.train.batch_size}, dropout {m.dropout}, Adam; {steps} timed "
        f"steps per round after 3 warm-up steps, {rounds} alternating rounds (mean ± SE over rounds).\n\n"
        "| trainer | target tokens/s | ratio to the faster PyTorch |\n|---|---|---|\n"
        + "".join(
            f"| {name} | {means[name]:,.0f} ± {se(rates[name]):,.0f} | {means[name] / faster_torch:.2f} |\n"
            for name in trainers
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/ntr-bench-world", help="world workdir (made if missing)")
    parser.add_argument(
        "--xl-workdir",
        help="also a 10^5-item world's workdir (`python -m benchmarks.xl_catalogue` makes one)",
    )
    parser.add_argument("--steps", type=int, default=60, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per framework")
    args = parser.parse_args()
    body = measure(ensure_world(args.workdir), args.steps, args.rounds)
    if args.xl_workdir:
        data = os.path.join(args.xl_workdir, "data")
        if not os.path.exists(os.path.join(data, "stats.json")):
            raise FileNotFoundError(
                f"{data}: run `python -m benchmarks.xl_catalogue --workdir {args.xl_workdir}` first."
            )
        body += "\n" + measure(data, args.steps, args.rounds)
    write_section("train_throughput", "Training throughput vs PyTorch", body)
    print(body)


if __name__ == "__main__":
    main()
