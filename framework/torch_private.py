"""Every private torch API the framework relies on, each behind one function or, for the fused list operations,
the one listed gate :data:`foreach` (no public way exists).

torch may change or remove any of them in a release; tests/test_torch_private.py asserts that each one still
exists and behaves as assumed here, so such a change fails there, by name, rather than somewhere in a run.
Imports are made on first use: some of these modules are slow to import and most runs never need them.
"""
from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Callable, cast

import torch

if TYPE_CHECKING:
    import torch.distributed as dist
    from torch.utils.data import DataLoader


def c10d_store(hostname: str, port: int, rank: int, world_size: int,
               timeout: datetime.timedelta) -> "dist.Store":
    """The store torchrun's workers meet in (``torch.distributed.rendezvous._create_c10d_store``): the agent's
    own store where torchrun serves one, else a TCP store that rank 0 hosts; the same choice
    ``init_process_group("env://")`` makes, which the caller cannot use because it adds a prefix per restart."""
    from torch.distributed.rendezvous import _create_c10d_store

    return _create_c10d_store(hostname, port, rank, world_size, timeout)


def shutdown_loader_workers(loader: "DataLoader") -> None:
    """Stop the worker processes a loader with ``persistent_workers`` keeps (its ``_iterator``) now, and drop
    the iterator so the next epoch starts new ones; DataLoader has no public call for it."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    loader._iterator = None


def dynamo_supported() -> bool:
    """Whether torch.compile's graph capture (dynamo) supports this Python (``torch._dynamo``)."""
    import torch._dynamo

    return bool(torch._dynamo.is_dynamo_supported())


def triton_available() -> bool:
    """Whether Triton, which Inductor's GPU kernels need, is installed and usable (``torch.utils._triton``)."""
    from torch.utils._triton import has_triton

    return bool(has_triton())


# torch's fused list operations (``torch._foreach_<op>``, what torch.optim's foreach path runs), by the names
# used here; an op not listed is an AttributeError, so each new one joins this list and its test.
FOREACH_OPS = ("add", "add_", "addcmul_", "copy_", "div_", "lerp_", "mul", "mul_", "norm", "sqrt", "sub")


class _Foreach:
    """``foreach.lerp_(targets, ends, weight)`` is ``target.lerp_(end, weight)`` for every pair, as one fused
    operation; likewise for each op of :data:`FOREACH_OPS`."""

    def __getattr__(self, op: str) -> Callable[..., Any]:
        if op not in FOREACH_OPS:
            raise AttributeError(f"torch_private.foreach.{op}: not in FOREACH_OPS")
        return cast(Callable[..., Any], getattr(torch, f"_foreach_{op}"))


foreach = _Foreach()
