"""Beam's DaskRunner, corrected so that every sink of a pipeline runs.

Users name it `runner=sign_datasets.DaskRunner` (the package resolves the
name lazily, so `import sign_datasets` loads neither Beam nor Dask):

    --beam "runner=sign_datasets.DaskRunner,dask_client_address=tcp://HOST:8786"

Beam 2.78's `DaskRunner.run_pipeline` turns each transform into a Dask bag
and then computes only the last bag it made ("we can get away with computing
just the last value, which should be connected to the full Bag Task Graph").
A pipeline with several sinks is not one chain: a TFDS build writes each
split's shards and split info, and ours each split's summary, on separate
branches, so only part of the writes ran. This runner computes every leaf
bag of the graph instead, and closes the client it connected once the
pipeline is done (Beam's stays connected); nothing else differs.

Beam's runner makes each Create one Dask partition per 128 elements (or
`dask_npartitions` of them), and every later step keeps that cut: a plan
with fewer work items than that runs as one task unless the build says
`dask_npartitions=N` (about twice the workers' threads; a side input costs
a computation per partition on this runner, so not many more).
"""

from __future__ import annotations

from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.dask import dask_runner
from dask import bag as db

# A key no transform can be: the visitor's bags are keyed by transform.
_EVERY_LEAF = "sign_datasets: every leaf"


def _nothing(partition) -> list:
    return []


def _consumed(nodes) -> set:
    """The transforms whose output some other transform reads (main or side input)."""
    consumed = set()
    for node in nodes:
        for value in node.inputs:
            consumed.add(getattr(value, "producer", None))
        for side_input in node.side_inputs:
            consumed.add(side_input.pvalue.producer)
    return consumed


def every_leaf(bags: dict) -> db.Bag:
    """One bag that is computed once every leaf bag is: a leaf's elements are
    dropped in its own partitions, so the client gathers nothing."""
    consumed = _consumed(bags)
    leaves = [bag for node, bag in bags.items() if node not in consumed and bag is not None]
    return db.concat([leaf.map_partitions(_nothing) for leaf in leaves])


class _EveryLeafVisitor(PipelineVisitor):
    """Beam's own translating visitor, plus one last bag over every leaf,
    which is the one `run_pipeline` computes."""

    def __init__(self, stock: PipelineVisitor):
        self.stock = stock
        self.bags = stock.bags

    def visit_transform(self, transform_node: AppliedPTransform) -> None:
        self.stock.visit_transform(transform_node)

    def leave_composite_transform(self, transform_node: AppliedPTransform) -> None:
        if transform_node.parent is None:  # the pipeline's root, left last
            self.bags[_EVERY_LEAF] = every_leaf(dict(self.bags))


class _ClosingResult(dask_runner.DaskRunnerResult):
    """Beam's result, closing the pipeline's client once the run is over:
    Beam 2.78 leaves it connected (one per build, with its threads)."""

    def wait_until_finish(self, duration=None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            self.client.close()


class DaskRunner(dask_runner.DaskRunner):
    """Beam's DaskRunner computing every leaf of the graph, not only the last,
    and closing its client when the pipeline is done."""

    def run_pipeline(self, pipeline, options):
        result = super().run_pipeline(pipeline, options)
        return _ClosingResult(result.client, result.futures)

    @staticmethod
    def to_dask_bag_visitor(bag_kwargs=None, lazy_side_inputs: bool = False) -> PipelineVisitor:
        return _EveryLeafVisitor(dask_runner.DaskRunner.to_dask_bag_visitor(
            bag_kwargs, lazy_side_inputs))
