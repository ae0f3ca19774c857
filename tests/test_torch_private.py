"""The private torch APIs of framework/torch_private.py still exist and behave as the framework assumes.

A torch release that renames, removes or changes one fails here, by name: update that one function.
"""
from __future__ import annotations

import datetime
import inspect
import os
from typing import Any, Dict, Iterator, List, Tuple

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


def _pairs(a: List[torch.Tensor], b: List[torch.Tensor]) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    return zip(a, b, strict=True)


# Each fused op of FOREACH_OPS, in the forms the framework calls it, against its per-tensor operation: (op, the
# reference on lists a, b, c, the fused call's arguments, its keywords).
CASES = [
    ("add", lambda a, b, c: [x.add(y, alpha=0.5) for x, y in _pairs(a, b)], lambda a, b, c: (a, b), {"alpha": 0.5}),
    ("add_", lambda a, b, c: [x.add(y, alpha=2.0) for x, y in _pairs(a, b)], lambda a, b, c: (a, b), {"alpha": 2.0}),
    ("add_", lambda a, b, c: [x + 1e-8 for x in a], lambda a, b, c: (a, 1e-8), {}),
    ("addcmul_", lambda a, b, c: [x.addcmul(y, z, value=0.3) for x, y, z in zip(a, b, c, strict=True)],
     lambda a, b, c: (a, b, c), {"value": 0.3}),
    ("copy_", lambda a, b, c: [y.clone() for y in b], lambda a, b, c: (a, b), {}),
    ("div_", lambda a, b, c: [x / 3.0 for x in a], lambda a, b, c: (a, 3.0), {}),
    ("div_", lambda a, b, c: [x / y for x, y in _pairs(a, b)], lambda a, b, c: (a, b), {}),
    ("lerp_", lambda a, b, c: [x.lerp(y, 0.25) for x, y in _pairs(a, b)], lambda a, b, c: (a, b, 0.25), {}),
    ("mul", lambda a, b, c: [x * 0.7 for x in a], lambda a, b, c: (a, 0.7), {}),
    ("mul_", lambda a, b, c: [x * 0.7 for x in a], lambda a, b, c: (a, 0.7), {}),
    ("norm", lambda a, b, c: [torch.linalg.vector_norm(x) for x in a], lambda a, b, c: (a,), {}),
    ("sqrt", lambda a, b, c: [x.sqrt() for x in a], lambda a, b, c: (a,), {}),
    ("sub", lambda a, b, c: [x - y for x, y in _pairs(a, b)], lambda a, b, c: (a, b), {}),
]


def test_every_listed_operation_has_a_case() -> None:
    assert sorted({case[0] for case in CASES}) == sorted(torch_private.FOREACH_OPS)


@pytest.mark.parametrize("op, reference, arguments, keywords", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_fused_list_operation_does_what_the_per_tensor_one_does(op: str, reference: Any, arguments: Any,
                                                                    keywords: Dict[str, Any]) -> None:
    a, b, c = list(_tensors(0)), list(_tensors(1)), list(_tensors(2))
    inputs = [t.clone() for t in (*a, *b, *c)]
    expected = reference(a, b, c)
    result = getattr(torch_private.foreach, op)(*arguments(a, b, c), **keywords)
    in_place = op.endswith("_")
    got = a if in_place else result  # an in-place op changes its first list, any other changes none
    assert len(got) == len(expected)
    assert all(torch.allclose(g, e, rtol=1e-6, atol=0) for g, e in zip(got, expected, strict=True))
    untouched = (*b, *c) if in_place else (*a, *b, *c)
    kept = inputs[len(a):] if in_place else inputs
    assert all(torch.equal(t, k) for t, k in zip(untouched, kept, strict=True))


def test_an_operation_not_listed_is_refused() -> None:
    with pytest.raises(AttributeError, match="not in FOREACH_OPS"):
        torch_private.foreach.exp_  # noqa: B018 (the lookup is what is tested)


def test_default_init_weights_resets_every_batch_norm() -> None:
    net = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm2d(2), nn.BatchNorm3d(2), nn.SyncBatchNorm(2))
    for norm in net:
        nn.init.constant_(norm.weight, 5.0)
        nn.init.constant_(norm.bias, 5.0)
    default_init_weights(net, bias_fill=0.5)
    for norm in net:
        assert torch.equal(norm.weight, torch.ones(2)) and torch.equal(norm.bias, torch.full((2,), 0.5))
