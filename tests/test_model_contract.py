"""The model contract: a model with two networks and two optimizers trains, saves, resumes bitwise, exports
and dry-runs through the unchanged trainer and checkpoint manager; start-up builds each part once; the
import graph of the package has no cycle; format-1 checkpoints still resume."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest
import torch
from torch import nn

import framework
from framework.cli import run_main, train_main
from framework.models.base import Batch, BaseModel, Model
from framework.models.sr_model import SRModel, build_network
from framework.options import Options
from framework.registry import MODEL_REGISTRY, OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY

from .tinyrun import load as _load, train_in_process, write_options

PACKAGE = Path(framework.__file__).resolve().parent


class TwoNetModel(BaseModel):
    """A generator with a pixel loss plus a little critic trained to tell its outputs from the GT, each with
    its own optimizer and schedule, and a small adversarial term for the generator (a GAN in miniature)."""

    def __init__(self, options: Options, device: torch.device) -> None:
        super().__init__(device)
        self.nets["net_g"] = build_network(options).to(device)
        torch.manual_seed(options.manual_seed + 1)
        self.nets["net_d"] = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2),
                                           nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1)).to(device)
        if options.train is None:
            return
        params = list(self.nets["net_g"].parameters())
        self.optimizers["optim_g"] = options.train.optim_g.build(OPTIMIZER_REGISTRY, params=params)
        self.optimizers["optim_d"] = torch.optim.Adam(self.nets["net_d"].parameters(), lr=1e-3)
        for name, optimizer in self.optimizers.items():
            self.schedulers[name] = SCHEDULER_REGISTRY.get("MultiStepLR")(optimizer, milestones=[3], gamma=0.5)
        self.bce = nn.BCEWithLogitsLoss()
        self.d_steps = 0

    def forward_losses(self, batch: Batch) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        lq, gt = batch["lq"].to(self.device), batch["gt"].to(self.device)
        output = self.nets["net_g"](lq)
        fake = self.nets["net_d"](output)
        return output, {"l_g_pix": (output - gt).abs().mean(),
                        "l_g_gan": 0.01 * self.bce(fake, torch.ones_like(fake))}

    def train_step(self, batch: Batch, iteration: int) -> Dict[str, torch.Tensor]:
        optim_g, optim_d = self.optimizers["optim_g"], self.optimizers["optim_d"]
        for p in self.nets["net_d"].parameters():
            p.requires_grad_(False)
        optim_g.zero_grad(set_to_none=True)
        output, losses = self.forward_losses(batch)
        sum(losses.values()).backward()
        for p in self.nets["net_d"].parameters():
            p.requires_grad_(True)
        optim_d.zero_grad(set_to_none=True)
        real = self.nets["net_d"](batch["gt"].to(self.device))
        fake = self.nets["net_d"](output.detach())
        l_d = self.bce(real, torch.ones_like(real)) + self.bce(fake, torch.zeros_like(fake))
        l_d.backward()
        self.note_learning_rates()
        optim_g.step()
        optim_d.step()
        for scheduler in self.schedulers.values():
            scheduler.step()
        return {**{k: v.detach() for k, v in losses.items()}, "l_d": l_d.detach()}


@pytest.fixture()
def two_net_model() -> Iterator[None]:
    MODEL_REGISTRY.register(TwoNetModel)
    try:
        yield
    finally:
        MODEL_REGISTRY._items.pop("TwoNetModel")


def test_both_models_implement_the_contract(two_net_model, workdir: Path) -> None:
    from framework.options import load_options

    for model_type in ("SRModel", "TwoNetModel"):
        options = load_options(str(write_options(workdir, **{"model_type": model_type})))
        assert isinstance(MODEL_REGISTRY.get(model_type)(options, torch.device("cpu")), Model)


def test_two_network_model_trains_saves_resumes_bitwise_exports_and_dry_runs(
        two_net_model, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    common = {"model_type": "TwoNetModel", "train.total_iter": 6, "logger.save_checkpoint_freq": 3}
    full = write_options(workdir, "full", **common)
    part = write_options(workdir, "part", **common)
    assert train_in_process(full) == 0
    assert train_in_process(part, ["train.total_iter=3"]) == 0
    assert train_in_process(part, ["path.resume_path=auto"]) == 0
    a, b = _load(workdir / "weights" / "full_iter_6.pt"), _load(workdir / "weights" / "part_iter_6.pt")
    assert set(a["model"]["networks"]) == {"net_g", "net_d"}
    assert set(a["model"]["optimizers"]) == set(a["model"]["schedulers"]) == {"optim_g", "optim_d"}
    for group in ("networks", "optimizers"):
        for name in a["model"][group]:
            assert _equal(a["model"][group][name], b["model"][group][name]), (group, name)
    assert a["model"]["schedulers"] == b["model"]["schedulers"]
    weights = workdir / "weights"
    assert (weights / "full_iter_6.pth").read_bytes() == (weights / "part_iter_6.pth").read_bytes()
    pth = _load(workdir / "weights" / "full_iter_6.pth")
    assert list(pth) == ["params"] and _equal(pth["params"], a["model"]["networks"]["net_g"])  # the deployable G

    from framework.tools import checkpoint_tool
    out = workdir / "exported.pth"
    assert run_main(checkpoint_tool.main, ["export", str(workdir / "weights" / "full_iter_6.pt"), "-o", str(out)]) == 0
    assert _equal(_load(out)["params"], a["model"]["networks"]["net_g"])

    capsys.readouterr()
    assert run_main(train_main, ["-opt", str(full), "--dry-run", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "network net_g (MSRResNet)" in printed and "network net_d (Sequential)" in printed
    assert "l_g_pix" in printed and "l_g_gan" in printed and "nothing was written" in printed


def _equal(x: object, y: object) -> bool:
    """Bitwise equality of nested dicts/lists of tensors and plain values."""
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(_equal, x, y))
    return x == y


def assert_same_final_state(weights: Path, ref: str, other: str, iteration: int, groups: Tuple[str, ...]) -> None:
    """Two runs' files at ``iteration`` are the same: the ``.pt`` model groups bit for bit, the ``.pth``
    byte for byte (an interrupted-and-resumed run against an uninterrupted one)."""
    a, b = _load(weights / f"{ref}_iter_{iteration}.pt"), _load(weights / f"{other}_iter_{iteration}.pt")
    for group in groups:
        assert _equal(a["model"][group], b["model"][group]), group
    assert (weights / f"{other}_iter_{iteration}.pth").read_bytes() == \
        (weights / f"{ref}_iter_{iteration}.pth").read_bytes()


# ------------------------------------------------------------------------------------------ built once


def test_a_run_scans_each_folder_and_builds_the_model_once(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.data import backends

    scans: List[str] = []
    scan = backends.images_by_stem
    monkeypatch.setattr(backends, "images_by_stem", lambda folder: scans.append(folder) or scan(folder))
    builds: List[int] = []
    init = SRModel.__init__
    monkeypatch.setattr(SRModel, "__init__", lambda self, *a, **k: builds.append(1) or init(self, *a, **k))
    opt = write_options(workdir, **{"train.total_iter": 2})
    assert train_in_process(opt) == 0
    assert sorted(scans) == sorted(["data/train/HR", "data/train/LR_x2", "data/val/HR", "data/val/LR_x2"])
    assert len(builds) == 1
    scans.clear()
    builds.clear()
    assert run_main(train_main, ["-opt", str(opt), "--dry-run", "--no-progress"]) == 0
    assert len(scans) == 4 and len(builds) == 1


# ------------------------------------------------------------------------------------------ import graph


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: Set[str]) -> Set[str]:
    """Modules of the package that ``path`` imports by name, at module level or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph() -> Dict[str, Set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): _imports(f, modules) for f in files}


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_import_graph_of_the_package_has_no_cycle() -> None:
    """Explicit imports only (a package's ``__init__`` counts where it is imported by name; the implicit
    import of parent packages does not)."""
    graph = import_graph()
    assert graph["framework.options"] >= {"framework.registry", "framework.schema"}
    assert "framework.checks" in graph["framework.cli"]  # function-level imports are seen too:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle(graph) == []


# ------------------------------------------------------------------------------------------ format 1


def test_a_format_1_checkpoint_still_resumes_pretrains_and_verifies(workdir: Path) -> None:
    from framework.checkpoint.safe_load import verify

    opt = write_options(workdir, **{"train.total_iter": 4, "logger.save_checkpoint_freq": 4})
    assert train_in_process(opt) == 0
    pt = workdir / "weights" / "tiny_iter_4.pt"
    state = _load(pt)
    model = state["model"]
    state["format_version"] = 1
    state["model"] = {"net_g": model["networks"]["net_g"], "net_g_ema": None,
                      "optimizer": model["optimizers"]["optim_g"], "scheduler": model["schedulers"]["optim_g"]}
    old = workdir / "old_iter_4.pt"
    torch.save(state, old)
    assert set(verify(str(old))["model"]["networks"]) == {"net_g"}
    shutil.move(str(old), pt)
    assert train_in_process(opt, ["path.resume_path=auto", "train.total_iter=5"]) == 0
    resumed = _load(workdir / "weights" / "tiny_iter_5.pt")
    assert resumed["format_version"] == 2 and resumed["iteration"] == 5
    ft = write_options(workdir, "ft", **{"train.total_iter": 1, "path.pretrain_path": str(pt), "val": None})
    assert train_in_process(ft) == 0
