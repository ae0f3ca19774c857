"""The private torch APIs of framework/torch_private.py still exist and behave as the framework assumes.

A torch release that renames, removes or changes one fails here, by name: update that one function.
"""
from __future__ import annotations

import datetime
import inspect
import os
from typing import Iterator

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from framework import torch_private
from framework.archs.arch_util import default_init_weights


def test_create_c10d_store_takes_the_arguments_passed_and_gives_a_working_store(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.distributed.rendezvous import _create_c10d_store

    parameters = list(inspect.signature(_create_c10d_store).parameters)
    assert parameters[:5] == ["hostname", "port", "rank", "world_size", "timeout"]
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)  # rank 0 hosts the store
    store = torch_private.c10d_store("127.0.0.1", 0, 0, 1, datetime.timedelta(seconds=30))
    assert isinstance(store, torch.distributed.Store)
    store.set("key", "value")
    assert store.get("key") == b"value"


class _WorkerPids(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        return os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_persistent_loader_keeps_its_iterator_whose_shutdown_stops_the_workers() -> None:
    loader = DataLoader(_WorkerPids(), batch_size=4, num_workers=1, persistent_workers=True)
    (pids,) = list(loader)
    pid = int(pids[0])
    assert pid != os.getpid() and _alive(pid)
    assert loader._iterator is not None and hasattr(loader._iterator, "_shutdown_workers")
    torch_private.shutdown_loader_workers(loader)
    assert loader._iterator is None and not _alive(pid)  # stopped and reaped now, not at exit
    (again,) = list(loader)  # the loader still works: new workers for the next epoch
    assert int(again[0]) != pid
    torch_private.shutdown_loader_workers(loader)


def test_compile_availability_probes_answer() -> None:
    assert isinstance(torch_private.dynamo_supported(), bool)
    assert isinstance(torch_private.triton_available(), bool)


def _tensors(seed: int) -> Iterator[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) for shape in ((3,), (2, 4), ()))


def test_foreach_copy_and_lerp_do_what_the_per_tensor_operations_do() -> None:
    targets, sources = list(_tensors(0)), list(_tensors(1))
    expected = [t.clone().lerp_(s, 0.25) for t, s in zip(targets, sources, strict=True)]
    torch_private.foreach_lerp_(targets, sources, 0.25)
    assert all(torch.equal(t, e) for t, e in zip(targets, expected, strict=True))
    torch_private.foreach_copy_(targets, sources)
    assert all(torch.equal(t, s) and t is not s for t, s in zip(targets, sources, strict=True))


def test_default_init_weights_resets_every_batch_norm() -> None:
    net = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm2d(2), nn.BatchNorm3d(2), nn.SyncBatchNorm(2))
    for norm in net:
        nn.init.constant_(norm.weight, 5.0)
        nn.init.constant_(norm.bias, 5.0)
    default_init_weights(net, bias_fill=0.5)
    for norm in net:
        assert torch.equal(norm.weight, torch.ones(2)) and torch.equal(norm.bias, torch.full((2,), 0.5))
