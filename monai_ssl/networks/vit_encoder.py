"""A Vision Transformer encoder on MONAI's ``ViT`` that returns one feature vector per image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import ViT
from monai.utils import ensure_tuple_rep
from torch import nn

__all__ = ["POOLINGS", "ViTEncoder", "interpolate_position_embeddings", "vit_encoder"]

POOLINGS = ("cls", "mean")


def interpolate_position_embeddings(
    position_embeddings: torch.Tensor, trained_grid: Sequence[int], grid: Sequence[int]
) -> torch.Tensor:
    """Patch-position embeddings ``(1, prod(trained_grid), D)`` resized to ``(1, prod(grid), D)``.

    The embeddings are laid out on their patch grid (row-major, the order of MONAI's flattened
    convolutional patch embedding) and resized bicubically in 2D, trilinearly in 3D (PyTorch has no
    bicubic 3D mode), as DINO does to feed a ViT its 96-px local crops beside the 224-px global ones
    (Caron et al., ICCV 2021, Sec. 3.1 multi-crop; ``interpolate_pos_encoding`` of the reference
    ``vision_transformer.py``). MONAI's ``ViT`` has no class-token position embedding, so there is
    nothing to keep apart. The same grid returns the embeddings unchanged.

    Args:
        position_embeddings: ``(1, N, D)`` with ``N = prod(trained_grid)``.
        trained_grid: patches per spatial dimension the embeddings were learnt for.
        grid: patches per spatial dimension of the input.

    Raises:
        ValueError: ``N`` does not match ``trained_grid``, or grids of 1 or more than 3 dimensions.
    """
    trained_grid, grid = tuple(int(g) for g in trained_grid), tuple(int(g) for g in grid)
    if len(grid) != len(trained_grid) or len(grid) not in (2, 3):
        raise ValueError(f"interpolate_position_embeddings: grids {trained_grid} and {grid} must both be 2D or 3D.")
    count, dim = position_embeddings.shape[1], position_embeddings.shape[2]
    if count != math.prod(trained_grid):
        raise ValueError(
            f"interpolate_position_embeddings: {count} embeddings do not fill the trained grid {trained_grid}."
        )
    if grid == trained_grid:
        return position_embeddings
    on_grid = position_embeddings.reshape(1, *trained_grid, dim).movedim(-1, 1)  # (1, D, *trained_grid)
    mode = "bicubic" if len(grid) == 2 else "trilinear"
    resized = F.interpolate(on_grid, size=grid, mode=mode, align_corners=False)
    return resized.flatten(2).transpose(1, 2)


class ViTEncoder(nn.Module):
    """MONAI's :class:`~monai.networks.nets.ViT` without a classification head, pooled to ``(B, hidden_size)``.

    ``pool="cls"`` returns the final (layer-normalised) class token, the image representation of
    Dosovitskiy et al. (ICLR 2021, eq. 4) and of DINO's and CASS's ViTs; the MONAI ``ViT`` is built
    with ``classification=True`` (which adds the class token) and its classification head is removed.
    ``pool="mean"`` builds the ``ViT`` without a class token and averages the patch tokens.

    ``out_features`` is ``hidden_size``. The input must have ``in_channels`` channels and, by
    default, exactly ``image_size`` pixels per side: the learnt position embeddings fix the number
    of patches. With ``interpolate_position=True`` any size whose sides are multiples of
    ``patch_size`` is accepted and the position embeddings are resized from the trained patch grid
    to the input's (:func:`interpolate_position_embeddings`), as DINO's ViT does for its local crops
    (Caron et al. 2021); at ``image_size`` the output is exactly MONAI's ``ViT`` forward.

    The forward runs MONAI's blocks through their public attributes: the patch projection
    (``patch_embedding.patch_embeddings``) flattened to tokens, plus the (resized)
    ``patch_embedding.position_embeddings``, ``patch_embedding.dropout``, the class token prepended
    (``cls_token``), ``blocks`` and ``norm``.

    Args:
        in_channels: input channels.
        image_size: input size per spatial dimension (an int for square images).
        patch_size: patch size per spatial dimension; must divide ``image_size``.
        hidden_size: token width.
        mlp_dim: hidden width of each block's MLP.
        num_layers: Transformer blocks.
        num_heads: attention heads; must divide ``hidden_size``.
        pool: ``"cls"`` or ``"mean"``.
        spatial_dims: 2 for images (patches are 2D), 3 for volumes.
        qkv_bias: biases in the query/key/value projections (True in the standard ViT).
        dropout_rate: dropout in the blocks.
        interpolate_position: accept other input sizes (multiples of ``patch_size``) by resizing the
            position embeddings; False refuses any size but ``image_size``.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: Sequence[int] | int,
        patch_size: Sequence[int] | int,
        hidden_size: int,
        mlp_dim: int,
        num_layers: int,
        num_heads: int,
        pool: str = "cls",
        spatial_dims: int = 2,
        qkv_bias: bool = True,
        dropout_rate: float = 0.0,
        interpolate_position: bool = False,
    ) -> None:
        super().__init__()
        if pool not in POOLINGS:
            raise ValueError(f"vit_encoder: pool must be one of {POOLINGS}, got {pool!r}.")
        image_size = tuple(int(s) for s in ensure_tuple_rep(image_size, spatial_dims))
        patch_size = tuple(int(p) for p in ensure_tuple_rep(patch_size, spatial_dims))
        if any(p <= 0 or s % p for s, p in zip(image_size, patch_size)):
            raise ValueError(
                f"vit_encoder: patch_size {patch_size} must divide image_size {image_size}; "
                "choose a crop size that is a multiple of the patch size (e.g. 224 with patch 16)."
            )
        if hidden_size % num_heads:
            raise ValueError(f"vit_encoder: num_heads {num_heads} must divide hidden_size {hidden_size}.")
        self.vit = ViT(
            in_channels=in_channels,
            img_size=image_size,
            patch_size=patch_size,
            hidden_size=hidden_size,
            mlp_dim=mlp_dim,
            num_layers=num_layers,
            num_heads=num_heads,
            classification=pool == "cls",
            dropout_rate=dropout_rate,
            spatial_dims=spatial_dims,
            qkv_bias=qkv_bias,
        )
        if hasattr(self.vit, "classification_head"):
            del self.vit.classification_head  # MONAI's ViT then returns all tokens, class token first
        self.in_channels = in_channels
        self.image_size = image_size
        self.patch_size = patch_size
        self.patch_grid = tuple(s // p for s, p in zip(image_size, patch_size))
        self.interpolate_position = interpolate_position
        self.pool = pool
        self.out_features = hidden_size

    def _check_input(self, x: torch.Tensor) -> tuple[int, ...]:
        """The input's patch grid, or a one-line ValueError naming the settings it breaks."""
        size = tuple(x.shape[2:])
        if x.shape[1] != self.in_channels or (not self.interpolate_position and size != self.image_size):
            raise ValueError(
                f"vit_encoder was built for in_channels={self.in_channels} and image_size={self.image_size}, "
                f"got an image of {x.shape[1]} channels and size {size}; "
                "set in_channels and image_size to the images (crops) it receives"
                " (or interpolate_position=True for other sizes)."
            )
        if len(size) != len(self.patch_size) or any(s <= 0 or s % p for s, p in zip(size, self.patch_size)):
            raise ValueError(
                f"vit_encoder with interpolate_position=True needs image sides that are multiples of "
                f"patch_size={self.patch_size}, got an image of size {size}."
            )
        return tuple(s // p for s, p in zip(size, self.patch_size))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens ``(B, [1 +] patches, hidden_size)`` of images ``(B, in_channels, *spatial)``."""
        grid = self._check_input(x)
        embedding = self.vit.patch_embedding
        patches = embedding.patch_embeddings(x).flatten(2).transpose(1, 2)  # (B, prod(grid), hidden)
        positions = interpolate_position_embeddings(embedding.position_embeddings, self.patch_grid, grid)
        tokens = embedding.dropout(patches + positions)
        if self.pool == "cls":
            tokens = torch.cat((self.vit.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        for block in self.vit.blocks:
            tokens = block(tokens)
        return self.vit.norm(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, hidden_size)`` of images ``(B, in_channels, *spatial)``."""
        tokens = self.tokens(x)
        if self.pool == "cls":
            return tokens[:, 0]
        return tokens.mean(dim=1)


def vit_encoder(
    in_channels: int,
    image_size: Sequence[int] | int,
    patch_size: Sequence[int] | int = 16,
    hidden_size: int = 768,
    num_layers: int = 12,
    num_heads: int = 12,
    pool: str = "cls",
    mlp_dim: int | None = None,
    spatial_dims: int = 2,
    interpolate_position: bool = False,
) -> ViTEncoder:
    """A ViT encoder; the defaults are ViT-B/16 (Dosovitskiy et al., ICLR 2021, Table 1).

    ViT-B/16 (hidden 768, 12 layers, 12 heads, MLP 3072, 16x16 patches; 85.8 M parameters at 224
    px with 3 channels and no head) is the Transformer of CASS (Singh et al. 2022) and of DINO
    (Caron et al. 2021). ViT-S/16, DINO's lighter option (Caron et al., Table 1), is
    ``hidden_size=384, num_heads=6`` with the other defaults. The MLP width is ``4 * hidden_size``
    unless ``mlp_dim`` is given.

    Args:
        in_channels: input channels (3 for RGB, 1 for grayscale).
        image_size: the size of the images (crops) it receives; a multiple of ``patch_size``.
        patch_size: patch size (16).
        hidden_size: token width (768 for ViT-B, 384 for ViT-S).
        num_layers: Transformer blocks (12).
        num_heads: attention heads (12 for ViT-B, 6 for ViT-S).
        pool: ``"cls"`` (the class token, default) or ``"mean"`` (mean of the patch tokens).
        mlp_dim: MLP width; ``4 * hidden_size`` when None.
        spatial_dims: 2 for images (default), 3 for volumes.
        interpolate_position: accept any input size that is a multiple of ``patch_size`` (DINO's
            local crops) by resizing the position embeddings; False (default) refuses other sizes.

    Raises:
        ValueError: a patch size that does not divide the image size, ``num_heads`` not dividing
            ``hidden_size`` or an unknown ``pool``; at ``forward``, an image whose channels differ
            from ``in_channels``, whose size differs from ``image_size`` (``interpolate_position``
            off) or is not a multiple of ``patch_size`` (on).
    """
    return ViTEncoder(
        in_channels=in_channels,
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=hidden_size,
        mlp_dim=4 * hidden_size if mlp_dim is None else mlp_dim,
        num_layers=num_layers,
        num_heads=num_heads,
        pool=pool,
        spatial_dims=spatial_dims,
        interpolate_position=interpolate_position,
    )
