"""Beam on dask.distributed: Beam's DaskRunner with the gaps our pipelines fall into closed.

Beam 2.77's `apache_beam.runners.dask.dask_runner.DaskRunner` translates Create, ParDo,
GroupByKey and Flatten to dask bags. Four of its gaps lose data or work silently in a
pipeline like `ntr preprocess`; this subclass closes them (Beam is pinned, so the internals it
builds on do not move under it):

1. A ParDo with tagged outputs (`with_outputs`) puts every output into one bag, so the
   dead-letter branch receives the main output. Here each consumer gets only its tag.
2. Outputs emitted in `finish_bundle` (Beam's file sinks report their written shards there)
   are collected before `finish_bundle` runs, so they vanish. Here they are kept.
3. Only the last transform's bag is computed, so every other sink never runs. Here every bag
   that no other transform reads is computed.
4. A side input's upstream is recomputed inside every task that reads it, so a file sink
   writes its shards twice and leaves a temp folder behind. Here a side input is computed
   once, before its consumer, and every output read by more than one transform is kept on
   the cluster (persisted) so that nothing upstream runs twice.

`beam.io.Read` has no translation at all; ntr never needs it: `pipelines.io` reads files on
every runner with a ParDo over 4 MiB byte ranges (`ReadLineBatches`).

Use it with `--runner=ntr.pipelines.dask_runner.DaskRunner --dask_client_address=HOST:PORT`,
or `ntr preprocess --dask-workers N` to start a local cluster of N worker processes.
"""

from __future__ import annotations

import contextlib

import dask.bag as db
from apache_beam import TaggedOutput, pvalue
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.dask import dask_runner as beam_dask
from apache_beam.runners.dask import transform_evaluator as ops
from apache_beam.runners.dask.overrides import dask_overrides
from apache_beam.transforms.sideinputs import SideInputMap

RUNNER = "ntr.pipelines.dask_runner.DaskRunner"
SMALL_CREATE = 1024


@contextlib.contextmanager
def local_cluster(workers: int):
    """A dask.distributed cluster of `workers` processes (one thread each) on loopback.

    Yields:
      The Beam flags that run a pipeline on it.
    """
    from distributed import LocalCluster  # noqa: PLC0415 (only when a cluster is asked for)

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        yield [f"--runner={RUNNER}", f"--dask_client_address={cluster.scheduler_address}"]


def _run_bundle(items, window_fn, invoker_args, invoker_kwargs, receivers):
    """`transform_evaluator.apply_dofn_to_bundle`, keeping tags and finish_bundle outputs, and
    windowing each element as it goes (Beam's runner windows every element in a separate
    pass first: 20% of a run's task time on the default world)."""
    invoker = ops.DoFnInvoker.create_invoker(*invoker_args, **invoker_kwargs)
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(ops.get_windowed_value(item, window_fn))
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    # Receivers hold WindowedValues (main output) and TaggedOutput(tag, WindowedValue).
    return [
        TaggedOutput(v.tag, v.value.value) if isinstance(v, TaggedOutput) else v.value
        for v in receivers.values
    ]


def _select(partition, tag):
    if tag is None:
        return [v for v in partition if not isinstance(v, TaggedOutput)]
    return [v.value for v in partition if isinstance(v, TaggedOutput) and v.tag == tag]


def _tag_filter(bag, tag):
    """The elements of `bag` that belong to output `tag` (None: the main output).

    A module-level function with `tag` as an argument: dask names a task by hashing its
    function and arguments, and a lambda's closure would not tell two tags apart.
    """
    return bag.map_partitions(_select, tag)


class DaskRunner(beam_dask.DaskRunner):
    """Beam's DaskRunner with tagged outputs, finish_bundle outputs, every sink computed and
    side inputs computed once (the module docstring says how)."""

    def run_pipeline(self, pipeline, options):
        import dask.distributed as ddist  # noqa: PLC0415

        dask_options = options.view_as(beam_dask.DaskOptions).get_all_options(
            drop_default=True, current_only=True
        )
        bag_kwargs = beam_dask.DaskOptions._extract_bag_kwargs(dask_options)  # noqa: SLF001
        client = ddist.Client(**dask_options)
        pipeline.replace_all(dask_overrides())
        consumers = _Consumers()
        pipeline.visit(consumers)
        visitor = _Visitor(client, bag_kwargs, consumers.count)
        pipeline.visit(visitor)  # computes the side inputs on the way
        sinks = [bag for node, bag in visitor.bags.items() if node not in visitor.read and bag is not None]
        # Unfused everywhere: fusing renames tasks, and a task persisted for a side input must
        # keep the name the later graphs use for it.
        futures = client.compute(sinks, optimize_graph=False)
        return _Result(client, futures)


class _Result(beam_dask.DaskRunnerResult):
    """Closes the pipeline's client when the pipeline ends (Beam's leaves it open, and it then
    keeps trying to reach a cluster that has gone)."""

    def wait_until_finish(self, duration=None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            self.client.close()


class _Consumers(PipelineVisitor):
    """How many transforms read each transform's output (main and side inputs, any tag)."""

    def __init__(self):
        self.count = {}

    def visit_transform(self, node) -> None:
        producers = [v.producer for v in node.inputs if not isinstance(v, pvalue.PBegin)]
        producers += [si.pvalue.producer for si in node.side_inputs]
        for producer in producers:
            self.count[producer] = self.count.get(producer, 0) + 1


class _Create(ops.Create):
    """Beam's Create op; a short list (file ranges, a `None` to start from) gets one
    partition per element, so that its consumers run in parallel (Beam's default puts up to
    128 elements in one partition)."""

    def apply(self, input_bag, side_inputs=None):
        values = self.transform.values
        if self.bag_kwargs or len(values) > SMALL_CREATE:
            return super().apply(input_bag, side_inputs)
        return db.from_sequence(values, npartitions=max(len(values), 1))


class _Visitor(PipelineVisitor):
    """Leaf transforms -> dask bags, each input filtered to the output tag it reads; side
    inputs computed (and their producers persisted) before their consumer is built."""

    def __init__(self, client, bag_kwargs, consumers: dict):
        self.client, self.bag_kwargs, self.consumers = client, bag_kwargs, consumers
        self.bags, self.read, self.persisted = {}, set(), set()

    def _input(self, value):
        if isinstance(value, pvalue.PBegin):
            return None
        self.read.add(value.producer)
        return _tag_filter(self.bags[value.producer], value.tag)

    def _persist(self, node) -> None:
        if node not in self.persisted:
            self.bags[node] = self.client.persist(self.bags[node], optimize_graph=False)
            self.persisted.add(node)

    def _side_input(self, side):
        self._persist(side.pvalue.producer)
        values = self.client.compute(self._input(side.pvalue), optimize_graph=False).result()
        window_fn = side._window_mapping_fn  # noqa: SLF001
        windowed = [ops.get_windowed_value(v, window_fn) for v in values]
        return SideInputMap(type(side), side._view_options(), windowed)  # noqa: SLF001

    def visit_transform(self, node) -> None:
        op_class = ops.TRANSLATIONS.get(node.transform.__class__, ops.NoOp)
        op_class = {ops.ParDo: _BundleParDo, ops.Create: _Create}.get(op_class, op_class)
        op = op_class(node, bag_kwargs=self.bag_kwargs)
        kwargs = {"input_bag": None, "side_inputs": None}
        inputs = [self._input(v) for v in node.inputs]
        if inputs:
            one = len(inputs) == 1 and not isinstance(op, ops.Flatten)
            kwargs["input_bag"] = inputs[0] if one else [b for b in inputs if b is not None]
        if node.side_inputs:
            kwargs["side_inputs"] = [self._side_input(si) for si in node.side_inputs]
        self.bags[node] = op.apply(**kwargs)
        if self.consumers.get(node, 0) > 1 and self.bags[node] is not None:
            # Read by several transforms: computed once, kept on the cluster (a dask graph
            # shares it only within one compute call, and side inputs are separate calls).
            self._persist(node)


class _BundleParDo(ops.ParDo):
    """Beam's ParDo op (`transform_evaluator.ParDo.apply`), running bundles with `_run_bundle`."""

    def apply(self, input_bag, side_inputs=None):
        transform = self.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        receivers = ops.OneReceiver()
        invoker_args = [
            ops.DoFnSignature(transform.fn),
            ops._OutputHandler(  # noqa: SLF001
                window_fn=window_fn,
                main_receivers=receivers[None],
                tagged_receivers=receivers,
                per_element_output_counter=None,
                output_batch_converter=None,
                process_yields_batches=False,
                process_batch_yields_elements=False,
            ),
        ]
        invoker_kwargs = {
            "context": ops.DoFnContext(transform.label, state=None),
            "side_inputs": side_inputs,
            "input_args": list(args),
            "input_kwargs": kwargs,
            "user_state_context": None,
            "bundle_finalizer_param": ops.DoFn.BundleFinalizerParam(),
        }
        return input_bag.map_partitions(_run_bundle, window_fn, invoker_args, invoker_kwargs, receivers)
