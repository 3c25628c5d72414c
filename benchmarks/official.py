"""Run-time access to the official TITA code for benchmarks (never committed, never imported by the package).

The official repository (``github:huxingyuabc/TITA``) is read from a local checkout given
on the command line (default ``/work/official``). Its imports are satisfied without
installing anything:

* ``timm`` (``DropPath``, ``to_2tuple``, ``trunc_normal_``): a stand-in package under
  ``<official>/_shim`` (see :data:`OFFICIAL_SHIM_HELP`) when ``timm`` is not importable;
* ``cvxpy`` (imported by ``utils/weight_methods.py`` for Nash-MTL, unused by FAMO) and
  ``torchvision.transforms.functional`` (imported by ``models/loss_mef.py``, only in
  commented-out code): empty placeholder modules registered in ``sys.modules`` by
  :func:`install_import_placeholders` when the real packages are absent. Any use of them
  would raise ``AttributeError``, so they cannot change what is measured.

The official losses move their Sobel kernels to the GPU with a hard-coded ``.cuda()`` in
their constructors; on a CPU-only torch :func:`cuda_as_identity` makes that call a no-op
while the losses are built (the kernels stay on the CPU; nothing else changes).

``mmcv`` must not be installed: the official OAF would then use mmcv's CARAFE kernel
instead of the pure-PyTorch path that ours reproduces.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import sys
import types
import warnings
from pathlib import Path

import torch

OFFICIAL_SHIM_HELP = ("a package <official>/_shim/timm/models/layers.py defining DropPath (identity in eval), "
                      "to_2tuple and trunc_normal_ (torch.nn.init.trunc_normal_)")
#: constructor arguments of the official test script and of ``config.json``'s ``netG`` (spec tita.md §0)
OFFICIAL_KWARGS = dict(upscale=1, in_chans=1, img_size=128, window_size=8, img_range=1.0, embed_dim=60,
                       num_heads=[6, 6, 6, 6], mlp_ratio=2, upsampler=None, resi_connection="oaf")
#: the official ``config.json`` training options the step uses
OFFICIAL_TRAIN = dict(lr=2e-5, ema_decay=0.999, famo_gamma=1e-3, famo_lr=0.025, loss_weight=1.0)
#: our task name -> the official loss type (``config.json``: IVIF vif, MFIF mff, MEIF mef)
OFFICIAL_LOSS_OF_TASK = {"IVF": "vif", "MFF": "mff", "MEF": "mef"}


def _add_paths(path: Path) -> None:
    for p in (path / "_shim", path):
        if p.is_dir() and str(p) not in sys.path:
            sys.path.insert(0, str(p))


def install_import_placeholders() -> list[str]:
    """Register empty ``cvxpy`` / ``torchvision.transforms.functional`` modules if not installed."""
    added = []
    if "cvxpy" not in sys.modules and importlib.util.find_spec("cvxpy") is None:
        sys.modules["cvxpy"] = types.ModuleType("cvxpy")
        added.append("cvxpy")
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        tv = types.ModuleType("torchvision")
        tr = types.ModuleType("torchvision.transforms")
        fn = types.ModuleType("torchvision.transforms.functional")
        tv.transforms, tr.functional = tr, fn
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.transforms.functional": fn})
        added.append("torchvision")
    return added


@contextlib.contextmanager
def cuda_as_identity(active: bool = True):
    """While active, ``Tensor.cuda()`` returns the tensor unchanged (CPU-only torch builds)."""
    if not active:
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


def load_official(path: Path):
    """The official ``SwinFusion`` class from a checkout at ``path``, or ``(None, why)``."""
    if not (path / "models" / "network_swinfusion.py").is_file():
        return None, f"official code not found at {path}"
    if importlib.util.find_spec("mmcv") is not None:
        return None, "mmcv is installed: the official OAF would use mmcv's CARAFE (zero padding), not the reference path"
    _add_paths(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from models.network_swinfusion import SwinFusion  # type: ignore[import-not-found]
    except ImportError as e:
        return None, f"cannot import the official network from {path} ({e}); needs {OFFICIAL_SHIM_HELP}"
    return SwinFusion, ""


def build_official(official_cls, sd=None, train: bool = False, **overrides):
    """The official network with the official-layout state dict ``sd`` (its own init if None);
    ``overrides`` replace constructor arguments of :data:`OFFICIAL_KWARGS` (e.g. ``drop_path_rate``)."""
    net = official_cls(**{**OFFICIAL_KWARGS, **overrides})
    if sd is not None:
        full = dict(sd)
        own = net.state_dict()
        full.update({k: v for k, v in own.items() if k not in full and k.endswith(".attn_mask")})  # deterministic buffers
        net.load_state_dict(full, strict=True)
    return net.train(train)


class OfficialTrainStep:
    """One iteration of the official ``train.py`` main loop, driven with in-memory batches.

    Mirrors the loop's order of operations (official ``config.json`` options): zero grads;
    for each task, forward the task's batch in train mode and evaluate that task's official
    loss (``models/loss_{vif,mff,mef}.py``); FAMO ``backward`` of the stacked losses
    (``utils/weight_methods.py``, gamma 1e-3, logit lr 0.025) on all network parameters;
    Adam step (lr 2e-5); under ``no_grad``, the three forwards and losses again and FAMO's
    ``update``; EMA update of a second network copy with decay 0.999. The MultiStepLR
    scheduler, logging and TensorBoard writes are left out (not compute).

    ``batches`` maps our task names (``IVF``, ``MFF``, ``MEF``) to ``{"A", "B"}`` tensors
    ``(b, 1, s, s)`` in [0, 1]. ``dtype`` casts the network, losses and batches (float64 for
    comparisons); ``net_kwargs`` override constructor arguments (e.g. ``drop_path_rate=0``).
    """

    def __init__(self, path: Path, batches: dict, sd=None, device="cpu", dtype=torch.float32, net_kwargs=None):
        cls, why = load_official(path)
        if cls is None:
            raise RuntimeError(why)
        install_import_placeholders()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from models.loss_mef import fusion_loss_mef  # type: ignore[import-not-found]
            from models.loss_mff import fusion_loss_mff  # type: ignore[import-not-found]
            from models.loss_vif import fusion_loss_vif  # type: ignore[import-not-found]
            from utils.weight_methods import WeightMethods  # type: ignore[import-not-found]
            from utils.famo_util import extract_weight_method_parameters_from_args  # type: ignore[import-not-found]
        losses = {"vif": fusion_loss_vif, "mff": fusion_loss_mff, "mef": fusion_loss_mef}
        self.device = torch.device(device)
        self.tasks = list(batches)
        self.batches = {t: {k: batches[t][k].to(self.device, dtype) for k in ("A", "B")} for t in self.tasks}
        with cuda_as_identity(self.device.type != "cuda"):
            self.lossfns = [losses[OFFICIAL_LOSS_OF_TASK[t]]().to(self.device, dtype) for t in self.tasks]
        self.net = build_official(cls, sd, train=True, **(net_kwargs or {})).to(self.device, dtype)
        self.ema = copy.deepcopy(self.net).eval()
        self.opt = torch.optim.Adam([p for p in self.net.parameters() if p.requires_grad], lr=OFFICIAL_TRAIN["lr"], weight_decay=0)
        params = extract_weight_method_parameters_from_args(gamma=OFFICIAL_TRAIN["famo_gamma"],
                                                            method_params_lr=OFFICIAL_TRAIN["famo_lr"])
        self.famo = WeightMethods(method="famo", n_tasks=len(self.tasks), device=self.device, **params["famo"])
        self.n_params = sum(p.numel() for p in self.net.parameters())

    def _losses(self) -> torch.Tensor:
        out = []
        for t, fn in zip(self.tasks, self.lossfns):
            a, b = self.batches[t]["A"], self.batches[t]["B"]
            total = fn(a, b, self.net(a, b))[0]
            out.append(OFFICIAL_TRAIN["loss_weight"] * total)
        return torch.stack(out)

    def __call__(self) -> torch.Tensor:
        self.opt.zero_grad()
        losses = self._losses()
        self.famo.backward(losses=losses, shared_parameters=list(self.net.parameters()), task_specific_parameters=None,
                           last_shared_parameters=None, representation=None)
        self.opt.step()
        with torch.no_grad():
            new = self._losses()
            self.famo.method.update(new.detach())
            d = OFFICIAL_TRAIN["ema_decay"]
            live = dict(self.net.named_parameters())
            for k, p in self.ema.named_parameters():
                p.mul_(d).add_(live[k], alpha=1 - d)
        return new
