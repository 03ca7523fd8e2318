"""The normalisation layers of the image-to-image nets (ResNet and U-Net generators, PatchGAN), in one place.

A norm is any callable ``channels → nn.Module``, picked in the config with ``_target_`` and ``_partial_: true``:
``torch.nn.InstanceNorm2d`` (the reference ``get_norm_layer('instance')``: no affine parameters, no running
statistics; CycleGAN), ``torch.nn.BatchNorm2d`` (affine, running statistics; pix2pix) or ``torch.nn.Identity``.
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

Norm = Callable[[int], nn.Module]


def conv_bias(norm: Norm) -> bool:
    """Whether a conv followed by ``norm`` needs a bias: only when the norm adds no learned shift of its own
    (the reference's ``use_bias = norm_layer == nn.InstanceNorm2d``, read off the layer rather than its name:
    an affine norm's β makes a conv bias redundant)."""
    return not any(name == "bias" for name, _ in norm(1).named_parameters())
