"""Where torch's own error text is the only signal (optimizer constructor arguments), one mapping turns it
into the option key; these cases fail as soon as torch words an error differently."""
from __future__ import annotations

import inspect

import pytest
import torch

from framework.errors import _ARGUMENT_WORDS, locate_argument

CASES = [
    (torch.optim.Adam, {"lr": -1.0}, "lr"),
    (torch.optim.Adam, {"betas": (1.5, 0.9)}, "betas"),
    (torch.optim.Adam, {"eps": -1.0}, "eps"),
    (torch.optim.Adam, {"weight_decay": -1.0}, "weight_decay"),
    (torch.optim.AdamW, {"lr": -1.0}, "lr"),
    (torch.optim.SGD, {"lr": 0.1, "momentum": -1.0}, "momentum"),
    (torch.optim.SGD, {"lr": 0.1, "nesterov": True}, "nesterov"),
]


@pytest.mark.parametrize("optimizer,kwargs,argument", CASES, ids=[f"{c[0].__name__}-{c[2]}" for c in CASES])
def test_torch_optimizer_errors_map_to_their_argument(optimizer, kwargs, argument) -> None:
    with pytest.raises(ValueError) as info:
        optimizer([torch.zeros(1, requires_grad=True)], **kwargs)
    names = [n for n in inspect.signature(optimizer).parameters if n != "params"]
    assert locate_argument(str(info.value).splitlines()[0], names) == argument, str(info.value)


def test_every_mapped_wording_is_exercised() -> None:
    assert set(_ARGUMENT_WORDS.values()) == {argument for _, _, argument in CASES}
