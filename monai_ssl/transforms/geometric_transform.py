"""PiCIE's equivariant transform ``G``: one crop box and flips per image, for images and feature maps alike.

The parameters are the ``(B, 6)`` rows ``[top, left, height, width, hflip, vflip]`` that
:func:`~monai_ssl.transforms.picie_view_params` draws; the box is in fractions of the image, so one row crops
a 224-px image and its 56-px feature map to the same region (Cho et al., CVPR 2021, Fig. 2: ``G`` on view 1's
image before the network, on view 2's feature map after it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["geometric_transform"]


def _box_theta(geometric: torch.Tensor) -> torch.Tensor:
    """``(B, 2, 3)`` ``affine_grid`` matrices (``align_corners=False``) mapping the output onto each crop box.

    An output coordinate ``v`` in ``[-1, 1]`` (pixel edges) samples the input at
    ``u = size * v + (2 * start + size - 1)`` along each axis, with ``start``/``size`` the box fractions.
    """
    top, left, height, width = geometric[:, :4].unbind(1)
    theta = torch.zeros(geometric.shape[0], 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 2] = width, 2.0 * left + width - 1.0
    theta[:, 1, 1], theta[:, 1, 2] = height, 2.0 * top + height - 1.0
    return theta


def geometric_transform(
    x: torch.Tensor, geometric: torch.Tensor, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """PiCIE's equivariant transform ``G``: crop each box, resize it to ``size``, then flip.

    Reference ``transform_eqv`` (``RandomResizedCrop``, ``RandomHorizontalTensorFlip``,
    ``RandomVerticalFlip`` in that order). The box is in fractions of the image, so the same row serves
    an image and its feature map (``G`` on view 1's image, ``G`` on view 2's features). The crops and
    resizes are one ``affine_grid`` + ``grid_sample`` (bilinear, ``align_corners=False``, border padding:
    what ``F.interpolate(mode="bilinear", align_corners=False)`` of the crop gives) on ``x``'s device and
    dtype (the grid is cast to ``x.dtype``, so fp16/bf16 under autocast work); images whose box is the
    whole image and whose size does not change are passed through untouched, and the flips are
    ``torch.flip``, so both are exact.

    Args:
        x: ``(B, C, H, W)`` images or feature maps, any float dtype and device.
        geometric: ``(B, 6)`` rows of :attr:`~monai_ssl.transforms.PiCIEViewParams.geometric` ``[top, left, height, width,
            hflip, vflip]``; best kept on the host (a device tensor is copied back, which waits for it).
        size: output ``(height, width)``; default ``x``'s own size.

    Returns:
        ``(B, C, *size)`` tensor of ``x``'s dtype on ``x``'s device.

    Raises:
        ValueError: ``x`` not 4-D, ``geometric`` not ``(B, 6)``, a box outside ``[0, 1]`` or empty, or a bad ``size``.
    """
    if x.ndim != 4:
        raise ValueError(f"geometric_transform: x must be (B, C, H, W), got {tuple(x.shape)}.")
    b, c, h, w = x.shape
    if geometric.ndim != 2 or geometric.shape != (b, 6):
        raise ValueError(
            f"geometric_transform: geometric must be ({b}, 6) rows [top, left, height, width, hflip, vflip] "
            f"from picie_view_params, got {tuple(geometric.shape)}."
        )
    out_h, out_w = (h, w) if size is None else (int(size[0]), int(size[1]))
    if size is not None and (len(size) != 2 or out_h < 1 or out_w < 1):
        raise ValueError(f"geometric_transform: size must be (height, width) with positive sizes, got {size}.")
    g = geometric.detach().to("cpu", torch.float64)
    box = g[:, :4]
    if (box[:, 2:] <= 0).any() or (box[:, :2] < -1e-9).any() or (box[:, :2] + box[:, 2:] > 1.0 + 1e-9).any():
        raise ValueError(f"geometric_transform: each crop box must be non-empty and inside [0, 1], got {box.tolist()}.")
    whole = (box == torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)).all(1)
    y = x
    if not (bool(whole.all()) and (out_h, out_w) == (h, w)):
        grid = F.affine_grid(_box_theta(g).to(x.device, torch.float32), [b, c, out_h, out_w], align_corners=False)
        y = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)
        if (out_h, out_w) == (h, w) and bool(whole.any()):
            y = torch.where(whole.to(x.device)[:, None, None, None], x, y)
    for column, dim in ((4, -1), (5, -2)):  # horizontal, then vertical flip
        flip = g[:, column] > 0.5
        if bool(flip.any()):
            y = torch.where(flip.to(x.device)[:, None, None, None], y.flip(dim), y)
    return y
