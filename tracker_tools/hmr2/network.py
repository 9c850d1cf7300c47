"""HMR2 (4D-Humans) as one exportable module: ViT backbone plus SMPL transformer head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from tracker_tools.hmr2.backbone import ViTBackbone
from tracker_tools.hmr2.head import DecoderSizes, SMPLTransformerDecoderHead


@dataclass(frozen=True, kw_only=True)
class HMR2Config:
    """Sizes of the network. The defaults are the released HMR2 (see :meth:`full`).

    Attributes:
        image_size: Backbone input ``(H, W)``: the central 192 columns of the 256 crop.
        patch_size: Patch kernel size and stride.
        patch_padding: Zero padding of the patch convolution.
        embed_dim: Backbone token width.
        depth: Backbone blocks.
        num_heads: Backbone attention heads.
        mlp_ratio: Backbone MLP hidden width as a multiple of ``embed_dim``.
        head_dim: Head decoder token width.
        head_depth: Head decoder layers.
        head_heads: Head attention heads.
        head_dim_head: Width of each head attention head.
        head_mlp_dim: Head feed-forward hidden width.

    """

    image_size: tuple[int, int] = (256, 192)
    patch_size: int = 16
    patch_padding: int = 2
    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.0
    head_dim: int = 1024
    head_depth: int = 6
    head_heads: int = 8
    head_dim_head: int = 64
    head_mlp_dim: int = 1024

    @classmethod
    def full(cls) -> HMR2Config:
        """Return the released HMR2 sizes (ViT-H backbone, 6-layer head)."""
        return cls()

    @classmethod
    def tiny(cls) -> HMR2Config:
        """Return a shallow network with the same code paths, for fast tests.

        The token width stays 1280 so that the served tensors (the embedding) keep the
        shapes of the model spec; depth and MLP width shrink instead.
        """
        return cls(
            depth=2,
            mlp_ratio=0.25,
            head_dim=64,
            head_depth=2,
            head_heads=4,
            head_dim_head=16,
            head_mlp_dim=64,
        )


class HMR2Output(NamedTuple):
    """Outputs of :class:`HMR2Network`, in graph order for export.

    The head's outputs first (their shapes: :class:`~tracker_tools.hmr2.head.SMPLHeadOutput`),
    then the embedding.

    Attributes:
        embedding: Appearance embedding ``(B, C)`` for the tracker: the mean of the final
            (``last_norm``) backbone feature map over its 192 tokens, L2-normalised.

    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    pred_cam: torch.Tensor
    pred_pose_6d: torch.Tensor
    embedding: torch.Tensor


class HMR2Network(nn.Module):
    """HMR2 inference network: backbone ``backbone.*`` and head ``smpl_head.*``.

    The state dict keys are exactly those of the official checkpoint's two sub-modules.
    Works in any floating dtype (e.g. after ``.double()``); no dropout, so train and eval
    modes compute the same thing.
    """

    def __init__(self, config: HMR2Config) -> None:
        """Build the network with uninitialised weights.

        Args:
            config: Network sizes.

        """
        super().__init__()
        self.config = config
        self.backbone = ViTBackbone(
            image_size=config.image_size,
            patch_size=config.patch_size,
            patch_padding=config.patch_padding,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
        )
        self.smpl_head = SMPLTransformerDecoderHead(
            DecoderSizes(
                dim=config.head_dim, depth=config.head_depth, heads=config.head_heads,
                dim_head=config.head_dim_head, mlp_dim=config.head_mlp_dim,
                context_dim=config.embed_dim,
            )
        )

    def forward(self, crops: torch.Tensor) -> HMR2Output:
        """Run the whole network.

        Args:
            crops: Normalised crops ``(B, 3, 256, 192)``: the central 192 columns of the
                256x256 crop, after ImageNet mean/std normalisation.

        Returns:
            The SMPL predictions and the appearance embedding.

        """
        return self.decode(self.backbone(crops))

    def decode(self, features: torch.Tensor) -> HMR2Output:
        """Run everything after the backbone: ``forward(x)`` is ``decode(backbone(x))``.

        The appearance embedding is the mean of the backbone feature map over its
        ``Hp * Wp`` (192) tokens, L2-normalised.

        Args:
            features: Backbone feature map ``(B, C, Hp, Wp)``.

        Returns:
            The SMPL predictions and the appearance embedding.

        """
        head = self.smpl_head(features)
        embedding = F.normalize(features.mean(dim=(2, 3)), dim=1)
        return HMR2Output(**head._asdict(), embedding=embedding)
