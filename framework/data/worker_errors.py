"""A user error in a DataLoader worker (an image that cannot be decoded) reaches the training process as the
same one-line :class:`UserError`, with the worker's traceback as its cause.

torch re-raises what a worker raised as ``type(exc)(text)``, the whole traceback folded into the message.
Instead the worker hands the error over as a value: :class:`ReportingDataset` returns a :class:`SampleFailure`
in place of the sample, :func:`collate_samples` passes it on in place of the batch, and :class:`ReportingLoader`
raises it in the training process: ``UserError(message) from RemoteTraceback(worker's traceback)``. Anything
else a worker raises (a bug) keeps torch's own route.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Iterator, List, NoReturn, Sized, cast

from torch.utils.data import DataLoader, Dataset, default_collate

from ..errors import RemoteTraceback, UserError


@dataclass(frozen=True)
class SampleFailure:
    """A sample that could not be made, as plain (picklable) text: the user error's line and its traceback."""

    message: str
    traceback: str

    def raise_here(self) -> NoReturn:
        raise UserError(self.message) from RemoteTraceback(self.traceback)


class ReportingDataset(Dataset):
    """``dataset`` whose samples' :class:`UserError` is returned as a :class:`SampleFailure`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(cast(Sized, self.dataset))

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.dataset[key]
        except UserError as exc:
            return SampleFailure(str(exc), "".join(traceback.format_exception(exc)))


def collate_samples(samples: List[Any]) -> Any:
    """torch's default collation, or the batch's first :class:`SampleFailure` in place of the batch."""
    failure = next((sample for sample in samples if isinstance(sample, SampleFailure)), None)
    return failure if failure is not None else default_collate(samples)


class ReportingLoader(DataLoader):
    """A DataLoader that raises a :class:`SampleFailure` batch as the user error it stands for."""

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in super().__iter__():
            if isinstance(batch, SampleFailure):
                batch.raise_here()
            yield batch
