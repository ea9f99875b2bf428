"""`ntr reasons label` as a Beam pipeline: the in-memory labeller's output, at scale.

    events.jsonl -> parse -> key by user -> GroupByKey -> LabelUser (reason model and catalogue
    vectors loaded once per worker in `setup`; each user's exposures in one batch) -> JSONL
                                                    \\-> counts per user -> sum -> counts JSON

Every user is labelled by `label.label_user`, as in the in-memory labeller, so the two write the
same events (the Beam file in arbitrary user order). The counts reconcile: events in = events
out (counted independently on the input and on the written lines), and every filled reason is
counted by reason.
"""

from __future__ import annotations

import json
import os
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from ntr.pipelines.io import ReadLines
from ntr.reasons.label import EMPTY_COUNTS, merge_counts

COUNTS = "counts"
PROGRESS_EVERY = 200


class LabelUser(beam.DoFn):
    """(user_id, events) -> labelled events (main output) and the user's counts (`counts`)."""

    def __init__(self, model_dir: str, items_path: str, history_len: int = 100):
        self.model_dir, self.items_path = model_dir, items_path
        self.history_len = history_len

    def setup(self):
        # Once per worker: the model and the catalogue vectors are too big to ship per element.
        from ntr.reasons.catalogue import ItemVectors  # noqa: PLC0415
        from ntr.reasons.data import load_items  # noqa: PLC0415
        from ntr.reasons.label import load_reason_model  # noqa: PLC0415 (torch on the worker)

        self.model = load_reason_model(self.model_dir)
        self.items = load_items(self.items_path)
        self.vectors = ItemVectors.load(self.model_dir, self.items)
        self.users = 0

    def process(self, element):
        from ntr.reasons.label import label_user  # noqa: PLC0415

        _, events = element
        events = sorted(events, key=lambda e: e["timestamp"])  # as `load_raw` orders them
        labelled, counts = label_user(events, self.items, self.model, self.vectors, self.history_len)
        for event in labelled:
            yield json.dumps(event, sort_keys=True)
        yield beam.pvalue.TaggedOutput(COUNTS, counts)
        self.users += 1
        if self.users % PROGRESS_EVERY == 0:  # progress of this worker (Beam has no global bar)
            print(f"labelled {self.users} users on worker {os.getpid()}", file=sys.stderr, flush=True)


class _SumCounts(beam.CombineFn):
    def create_accumulator(self):
        return dict(EMPTY_COUNTS)

    def add_input(self, accumulator, counts):
        return merge_counts(accumulator, counts)

    def merge_accumulators(self, accumulators):
        total = dict(EMPTY_COUNTS)
        for counts in accumulators:
            total = merge_counts(total, counts)
        return total

    def extract_output(self, accumulator):
        return accumulator


def run_beam_label(raw_dir: str, model_dir: str, output: str, beam_args: list[str] | None = None) -> dict:
    """Writes `output` (JSONL, one file) and `<output>.counts.json`; returns the counts.

    Raises:
      RuntimeError: when events in and out, or the filled reasons, do not reconcile.
    """
    events_path = os.path.join(raw_dir, "events.jsonl")
    counts_path = output + ".counts.json"
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with beam.Pipeline(options=PipelineOptions(beam_args or [])) as pipeline:
        events = pipeline | "Read" >> ReadLines(events_path) | "Parse" >> beam.Map(json.loads)
        read = events | "CountIn" >> beam.combiners.Count.Globally()
        labelled = (
            events
            | "ByUser" >> beam.Map(lambda e: (e["user_id"], e))
            | "Group" >> beam.GroupByKey()
            | "Label"
            >> beam.ParDo(LabelUser(model_dir, os.path.join(raw_dir, "items.jsonl"))).with_outputs(
                COUNTS, main="events"
            )
        )
        labelled.events | "Write" >> beam.io.WriteToText(output, shard_name_template="", num_shards=1)
        written = labelled.events | "CountOut" >> beam.combiners.Count.Globally()
        (
            labelled[COUNTS]
            | "Sum" >> beam.CombineGlobally(_SumCounts())
            | "InOut"
            >> beam.Map(
                lambda counts, n_in, n_out: {**counts, "events_in": n_in, "events_out": n_out},
                n_in=beam.pvalue.AsSingleton(read),
                n_out=beam.pvalue.AsSingleton(written),
            )
            | "Json" >> beam.Map(lambda counts: json.dumps(counts, sort_keys=True))
            | "WriteCounts" >> beam.io.WriteToText(counts_path, shard_name_template="", num_shards=1)
        )
    with open(counts_path, encoding="utf-8") as handle:
        counts = json.load(handle)
    balanced = counts["events_in"] == counts["events_out"] == counts["events"]
    if not balanced or counts["filled"] != sum(counts["filled_reasons"].values()):
        raise RuntimeError(f"the labeller's counts do not reconcile: {counts}; please report this.")
    return counts
