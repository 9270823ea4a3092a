"""A DataLoader whose data errors reach the caller as the original exception.

Used by the training loop and by ``depthsense-evaluate --workers N``, so a bad file read
in a worker process fails with the same one line as without workers.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from torch.utils.data import DataLoader, Dataset, default_convert

from depthsense.data.dataset import collate_samples
from depthsense.errors import DepthSenseError

__all__ = ["worker_safe_loader"]


def worker_safe_loader(dataset: Dataset, **kwargs: Any) -> "Iterator[Any]":
    """A ``DataLoader`` whose data errors reach the caller as the original exception.

    A :class:`DepthSenseError` or ``OSError`` raised by ``dataset[i]`` in a worker
    process would come back as the same type with a message holding the worker's whole
    traceback ("Caught DepthFileError in DataLoader worker process 0 ..."). Here the
    worker returns the exception as a value and the main process re-raises it unchanged,
    so ``--workers 2`` fails with the same one line as ``--workers 0``. Other exceptions
    (bugs) keep torch's behaviour.

    Args:
        dataset: any map-style data set.
        **kwargs: ``DataLoader`` arguments; ``collate_fn`` defaults to
            :func:`depthsense.data.collate_samples` (batches mixed data sets).
    Returns:
        An iterable with ``len()`` like the DataLoader.
    """
    inner = kwargs.pop("collate_fn", None)
    if inner is None:
        inner = default_convert if kwargs.get("batch_size", 1) is None else collate_samples
    return _Reraise(DataLoader(_CarryErrors(dataset), collate_fn=_CollateOrCarry(inner), **kwargs))


class _CarriedError:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _CarryErrors(Dataset):
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except (DepthSenseError, OSError) as exc:
            return _CarriedError(exc)


class _CollateOrCarry:
    def __init__(self, inner: Callable) -> None:
        self.inner = inner

    def __call__(self, items: Any) -> Any:
        if isinstance(items, _CarriedError):
            return items
        if isinstance(items, list):
            for item in items:
                if isinstance(item, _CarriedError):
                    return item
        return self.inner(items)


class _Reraise:
    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            if isinstance(batch, _CarriedError):
                raise batch.exc
            yield batch
