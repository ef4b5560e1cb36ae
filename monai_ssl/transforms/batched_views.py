"""The BYOL views of a whole batch at once, on the batch's device (the GPU path).

:func:`apply_view_params` makes one view (``T`` or ``T'`` of Grill et al. 2020, Table 6) of every
image of a batch from the per-image parameters that :class:`~monai_ssl.transforms.BYOLViewParamsd`
drew in the loader workers. It gives what :class:`~monai_ssl.transforms.ViewAugmentation` gives image by
image, with the same operations in the same order, but each one runs on the whole batch:

* **Random resized crop + flip** are one linear map per image and axis: the ``(out, in)`` matrix of
  PyTorch's bilinear resize of the crop window (its antialiasing triangle filter when shrinking, plain
  bilinear otherwise, both ``align_corners=False``), with the rows reversed for a flip. The views are
  ``Ry @ image @ Rx^T``: two batched matrix products, whatever the crops.
* **Colour jitter** in a per-image random order: at each of the four positions, each image's operation
  (brightness, contrast, saturation or none) is one affine blend ``a x + b + c gray``, clamped; hue is
  a masked rotation.
* **Gaussian blur** is again one banded matrix per image and axis (reflect padding folded in); images
  without blur get the identity.
* **Grayscale, BYOL+ brightness/contrast, solarization, cutout** are masked per-image blends.

The parameters stay on the host: which stages any image needs is decided there, without reading from
the device, and the per-image coefficients travel in one small copy. Nothing here waits on the device.
"""

from __future__ import annotations

import functools

import torch

from monai_ssl.transforms.view_params import VIEW_PARAM_FIELDS
from monai_ssl.transforms.views import _adjust_hue, _blur_kernel_size, _luma

__all__ = ["apply_view_params", "resize_matrices", "scale_intensity_batch"]

_FIELD = {name: i for i, name in enumerate(VIEW_PARAM_FIELDS)}


def _column(params: torch.Tensor, name: str) -> torch.Tensor:
    """One field of every image's parameter vector, ``(B,)``."""
    return params[:, _FIELD[name]]


def resize_matrices(
    start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int, flip: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, out_size, in_size)`` matrices resizing the window ``[start, start + length)`` of an axis.

    Row ``i`` holds the weights PyTorch's ``F.interpolate(mode="bilinear", align_corners=False)`` gives
    to the input pixels for output pixel ``i`` of the cropped window: a triangle filter centred at
    ``start + s (i + 1/2)``, ``s = length / out_size``, ``max(s, 1)`` pixels wide (the ``antialias=True``
    filter when shrinking; plain bilinear interpolation when enlarging), cut to the window and
    normalised. With ``flip[b]`` the rows of image ``b`` are reversed (a horizontal flip of the output).

    Args:
        start: first pixel of each window, ``(B,)``.
        length: pixels in each window, ``(B,)``, at least 1.
        in_size: pixels along the axis of the input.
        out_size: pixels along the axis of the output.
        flip: reverse the output axis of these images, ``(B,)`` bool.
    """
    device, dtype = start.device, torch.float32
    start, length = start.to(dtype), length.to(dtype)
    scale = length / out_size  # (B,)
    center = start[:, None] + scale[:, None] * (torch.arange(out_size, device=device, dtype=dtype) + 0.5)
    pixel = torch.arange(in_size, device=device, dtype=dtype) + 0.5  # input pixel centres
    width = scale.clamp_min(1.0)[:, None, None]
    weights = (1.0 - ((pixel[None, None, :] - center[:, :, None]) / width).abs()).clamp_min(0.0)
    inside = (pixel[None, :] > start[:, None]) & (pixel[None, :] < (start + length)[:, None])
    weights = weights * inside[:, None, :]
    weights = weights / weights.sum(-1, keepdim=True)
    if flip is not None:
        weights = torch.where(flip.to(device)[:, None, None], weights.flip(1), weights)
    return weights


@functools.lru_cache(maxsize=8)
def _reflect_taps(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets of the blur kernel for an axis of ``size`` and the one-hot ``(size, K, size)`` reflect map."""
    radius = _blur_kernel_size(size) // 2
    offsets = torch.arange(-radius, radius + 1, device=device)
    cols = (torch.arange(size, device=device)[:, None] + offsets[None, :]).abs()
    cols = torch.where(cols > size - 1, 2 * (size - 1) - cols, cols)
    taps = torch.nn.functional.one_hot(cols, size).to(torch.float32)
    return offsets.to(torch.float32), taps


def _blur_matrices(sigma: torch.Tensor, blur: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, size, size)`` Gaussian blur matrices (reflect padding folded in); the identity where not ``blur``."""
    offsets, taps = _reflect_taps(size, sigma.device)
    safe_sigma = torch.where(blur, sigma, torch.ones_like(sigma))
    kernel = torch.exp(-(offsets[None, :] ** 2) / (2.0 * safe_sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    matrices = torch.einsum("bk,ikj->bij", kernel, taps)
    eye = torch.eye(size, device=sigma.device, dtype=matrices.dtype)
    return torch.where(blur[:, None, None], matrices, eye)


def _per_image(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """``(B,)`` values shaped ``(B, 1, ...)`` to broadcast over a batch of ``ndim`` dimensions."""
    return values.view(-1, *([1] * (ndim - 1)))


def _gray_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean gray value of each view ``(B,)`` over all its pixels (and slices), as ``_adjust_contrast_``."""
    gray = _luma(x) if x.shape[1] == 3 else x
    return gray.flatten(1).mean(1)


def scale_intensity_batch(images: torch.Tensor) -> torch.Tensor:
    """Min-max scale each image of a batch to [0, 1] in float32, as MONAI's ``ScaleIntensity(0, 1)``.

    A constant image becomes all zeros (MONAI's ``rescale_array`` does the same).
    """
    x = images.float()
    flat = x.flatten(1)
    low, high = flat.amin(1), flat.amax(1)
    span = high - low
    scale = torch.where(span > 0, 1.0 / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(span))
    return (x - _per_image(low, x.ndim)) * _per_image(scale, x.ndim)


def _coefficients(params: torch.Tensor, rgb: bool) -> tuple[torch.Tensor, dict[str, bool]]:
    """Per-image coefficients of the colour stages (host side) and which stages any image needs.

    Returns a float32 ``(B, 4 * 4 + 8)`` table: for each jitter position ``k`` the multiplier ``a``, the
    contrast share ``(1 - f)`` (times the view's mean), the saturation share ``(1 - f)`` (times gray) and
    the hue shift; then grayscale, extra brightness, extra contrast, blur sigma, blur on, solarize,
    threshold, cutout on.
    """
    col = functools.partial(_column, params)
    jitter = col("jitter_on") > 0
    factors = torch.stack([col("brightness"), col("contrast"), col("saturation")], 1)
    columns, needs = [], {}
    for k in range(4):
        op = col(f"jitter_op{k}").long()
        is_b, is_c = jitter & (op == 0), jitter & (op == 1)
        is_s = jitter & (op == 2) & rgb
        is_h = jitter & (op == 3) & rgb & (col("hue") != 0)
        chosen = factors.gather(1, op.clamp(max=2)[:, None])[:, 0]  # the factor of this position's operation
        a = torch.where(is_b | is_c | is_s, chosen, torch.ones_like(chosen))
        columns += [a, torch.where(is_c, 1.0 - a, 0.0), torch.where(is_s, 1.0 - a, 0.0), torch.where(is_h, col("hue"), 0.0)]
        needs[f"affine{k}"] = bool((is_b | is_c | is_s).any())
        needs[f"contrast{k}"] = bool(is_c.any())
        needs[f"saturation{k}"] = bool(is_s.any())
        needs[f"hue{k}"] = bool(is_h.any())
    gray = (col("grayscale") > 0) & rgb
    extra_b = torch.where(col("extra_brightness_on") > 0, col("extra_brightness"), 1.0)
    extra_c = torch.where(col("extra_contrast_on") > 0, col("extra_contrast"), 1.0)
    blur = col("blur_on") > 0
    solarize = col("solarize") > 0
    cutout = col("cutout_on") > 0
    columns += [gray, extra_b, extra_c, col("blur_sigma"), blur, solarize, col("solarize_threshold"), cutout]
    needs.update(
        grayscale=bool(gray.any()),
        extra_brightness=bool((col("extra_brightness_on") > 0).any()),
        extra_contrast=bool((col("extra_contrast_on") > 0).any()),
        blur=bool(blur.any()),
        solarize=bool(solarize.any()),
        cutout=bool(cutout.any()),
    )
    return torch.stack([c.to(params.dtype) for c in columns], 1).float(), needs


def _to_device(table: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small host table to ``device`` without making the host wait (pinned on CUDA)."""
    if device.type == "cuda":
        return table.pin_memory().to(device, non_blocking=True)
    return table.to(device)


def apply_view_params(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """One BYOL view of every image of a batch, on the images' device.

    Args:
        images: ``(B, C, H, W)`` images or ``(B, C, S, H, W)`` volumes of slices, C in {1, 3}, float
            values in [0, 1], on any device (all slices of a volume share its parameters).
        params: ``(B, len(VIEW_PARAM_FIELDS))`` parameter vectors (:class:`~monai_ssl.transforms.BYOLViewParamsd`),
            best left on the host: the stages to run are decided from them without a device sync.

    Returns:
        float32 views ``(B, C, out_height, out_width)`` or ``(B, C, S, out_height, out_width)`` in [0, 1].

    Raises:
        ValueError: wrong shapes, or images of a batch with different output sizes.
    """
    if images.ndim not in (4, 5) or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, C, H, W) or (B, C, S, H, W) images with C in {{1, 3}}, got {tuple(images.shape)}.")
    if params.ndim != 2 or params.shape != (images.shape[0], len(VIEW_PARAM_FIELDS)):
        raise ValueError(
            f"expected ({images.shape[0]}, {len(VIEW_PARAM_FIELDS)}) view parameters for a batch of "
            f"{images.shape[0]}, got {tuple(params.shape)}; make them with monai_ssl.transforms.BYOLViewParamsd."
        )
    params = params.detach().cpu() if params.device.type != "cpu" else params
    out_sizes = params[:, :2].unique(dim=0)
    if out_sizes.shape[0] != 1:
        raise ValueError(f"the views of one batch must share one output size, got {out_sizes.tolist()}.")
    out_h, out_w = (int(v) for v in out_sizes[0])
    device = images.device
    volume = images.ndim == 5
    x = images if volume else images.unsqueeze(2)  # (B, C, S, H, W)
    b, c, s, h, w = x.shape
    rgb = c == 3

    geometry_fields = [_FIELD[k] for k in ("crop_top", "crop_height", "crop_left", "crop_width", "flip")]
    geometry = _to_device(params[:, geometry_fields].float(), device)
    rows = resize_matrices(geometry[:, 0], geometry[:, 1], h, out_h)
    cols = resize_matrices(geometry[:, 2], geometry[:, 3], w, out_w, flip=geometry[:, 4] > 0)
    x = rows[:, None] @ x.float().reshape(b, c * s, h, w) @ cols.transpose(1, 2)[:, None]
    x = x.reshape(b, c, s, out_h, out_w)

    table, needs = _coefficients(params, rgb)
    coef = _to_device(table, device)
    per = functools.partial(_per_image, ndim=5)
    for k in range(4):
        a, contrast_share, saturation_share, hue = (coef[:, 4 * k + i] for i in range(4))
        if needs[f"affine{k}"]:
            shift = per(contrast_share * _gray_mean(x)) if needs[f"contrast{k}"] else 0.0
            blended = x * per(a) + shift
            if needs[f"saturation{k}"]:
                blended = blended + _luma(x) * per(saturation_share)
            x = blended.clamp_(0.0, 1.0)
        if needs[f"hue{k}"]:
            x = torch.where(per(hue != 0), _adjust_hue(x, per(hue)[:, 0]), x)
    gray, extra_b, extra_c, sigma, blur, solarize, threshold, cutout = coef[:, 16:].unbind(1)
    if needs["grayscale"]:
        x = torch.where(per(gray > 0), _luma(x).expand_as(x), x)
    if needs["extra_brightness"]:
        x = (x * per(extra_b)).clamp_(0.0, 1.0)
    if needs["extra_contrast"]:
        x = (x * per(extra_c) + per((1.0 - extra_c) * _gray_mean(x))).clamp_(0.0, 1.0)
    if needs["blur"]:
        on = blur > 0
        flat = x.reshape(b, c * s, out_h, out_w)
        blur_rows, blur_cols = _blur_matrices(sigma, on, out_h), _blur_matrices(sigma, on, out_w)
        flat = blur_rows[:, None] @ flat @ blur_cols.transpose(1, 2)[:, None]
        x = flat.reshape(b, c, s, out_h, out_w)
    if needs["solarize"]:
        x = torch.where(per(solarize > 0) & (x >= per(threshold)), 1.0 - x, x)
    if needs["cutout"]:
        box_fields = [_FIELD[k] for k in ("cutout_on", "cutout_top", "cutout_height", "cutout_left", "cutout_width")]
        box = _to_device(params[:, box_fields].float(), device)
        r = torch.arange(out_h, device=device, dtype=torch.float32)
        q = torch.arange(out_w, device=device, dtype=torch.float32)
        in_rows = (r[None] >= box[:, 1:2]) & (r[None] < box[:, 1:2] + box[:, 2:3]) & (box[:, 0:1] > 0)
        in_cols = (q[None] >= box[:, 3:4]) & (q[None] < box[:, 3:4] + box[:, 4:5])
        hole = in_rows[:, :, None] & in_cols[:, None, :]
        x = x.masked_fill(hole[:, None, None], 0.0)
    x = x.clamp_(0.0, 1.0)
    if volume:
        return x
    return x[:, :, 0]
