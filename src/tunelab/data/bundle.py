"""What the data layer hands to training: the tokenized train and eval sets of a run and their report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, Union

from tunelab.config.schema import DataSection
from tunelab.data.report import DataReport

if TYPE_CHECKING:
    from datasets import Dataset


class ExampleStream(Protocol):
    """A train set read lazily (streaming): a torch IterableDataset of example dicts, without a length."""

    def __iter__(self) -> object:
        """The examples of one pass."""
        ...

    def set_epoch(self, epoch: int) -> None:
        """The Trainer's call at each epoch (the shuffle changes with it)."""
        ...


Packing = Literal["none", "plain", "neat"]  # plain: packed rows attend across examples; neat: examples kept apart
TrainSet = Union["Dataset", ExampleStream]
EvalSet = Union["Dataset", dict[str, "Dataset"], None]  # a dict: one set per eval dataset (eval_on_each_dataset)


@dataclass
class DataBundle:
    """Tokenized train and eval sets (datasets.Dataset with the columns of the stage's example kind, or a lazy
    stream when streaming; eval is a dict of sets with eval_on_each_dataset) and their report."""

    train: TrainSet
    eval: EvalSet
    report: DataReport
    packing: Packing = "none"

    @property
    def streaming(self) -> bool:
        """True when train is read lazily (no length; training needs max_steps)."""
        return not hasattr(self.train, "__len__")


def eval_set(evaluation: dict[str, Dataset], data: DataSection, report: DataReport) -> EvalSet:
    """The bundle's eval: the `validation` set, one set per eval dataset (eval_on_each_dataset), or None; the
    report gets the example counts."""
    report.eval_examples = sum(len(part) for part in evaluation.values())
    if data.eval_on_each_dataset and data.eval_dataset:
        report.eval_sets = {name: len(part) for name, part in evaluation.items()}
        return evaluation
    return evaluation.get("validation")
