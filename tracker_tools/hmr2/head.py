"""HMR2's SMPL head: a one-token transformer decoder cross-attending to the backbone tokens.

Parameter names follow the official ``SMPLTransformerDecoderHead`` and its
``TransformerDecoder`` (``hmr2/models/components/pose_transformer.py``), so the official
``smpl_head.*`` checkpoint entries load unchanged. Dropout (0 in the release) is left out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from tracker_service.model_spec import SMPL_BETAS, SMPL_JOINTS
from tracker_tools.hmr2.rotation import rot6d_to_rotmat

#: LayerNorm epsilon of the head: the official code uses ``nn.LayerNorm(dim)``, i.e. 1e-5.
NORM_EPS = 1e-5


@dataclass(frozen=True, kw_only=True)
class DecoderSizes:
    """Sizes of the head's transformer decoder.

    Attributes:
        dim: Token width.
        depth: Number of layers.
        heads: Attention heads.
        dim_head: Width of each head.
        mlp_dim: Feed-forward hidden width.
        context_dim: Context token width (channels of the backbone feature map).

    """

    dim: int
    depth: int
    heads: int
    dim_head: int
    mlp_dim: int
    context_dim: int


class SMPLHeadOutput(NamedTuple):
    """Predictions of the SMPL head.

    Attributes:
        global_orient: Root rotation matrix ``(B, 1, 3, 3)``.
        body_pose: Body joint rotation matrices ``(B, 23, 3, 3)``.
        betas: SMPL shape coefficients ``(B, 10)``.
        pred_cam: Weak-perspective crop camera ``(B, 3)`` ordered ``(s, tx, ty)``.
        pred_pose_6d: Raw 6D pose ``(B, 144)`` before the rotation-matrix conversion.

    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    pred_cam: torch.Tensor
    pred_pose_6d: torch.Tensor


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Reshape ``(B, N, heads * d)`` to ``(B, heads, N, d)``, head-major."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Scaled dot-product attention on ``(B, heads, N, d)`` tensors, heads merged back."""
    attn = ((q @ k.transpose(-1, -2)) * scale).softmax(dim=-1)
    return (attn @ v).transpose(1, 2).flatten(2)


class SelfAttention(nn.Module):
    """Self-attention with a fused bias-free ``to_qkv`` projection (chunked q, k, v)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        """Create the projections.

        Args:
            dim: Token width.
            heads: Attention heads.
            dim_head: Width of each head.

        """
        super().__init__()
        self.heads = heads
        self.scale = dim_head**-0.5
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the tokens of ``x`` of shape ``(B, N, dim)``."""
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        return self.to_out(_attend(q, k, v, self.scale))


class CrossAttention(nn.Module):
    """Cross-attention from the query tokens to context tokens (``to_kv`` chunked k, v)."""

    def __init__(self, dim: int, context_dim: int, heads: int, dim_head: int) -> None:
        """Create the projections.

        Args:
            dim: Query token width.
            context_dim: Context token width.
            heads: Attention heads.
            dim_head: Width of each head.

        """
        super().__init__()
        self.heads = heads
        self.scale = dim_head**-0.5
        self.to_kv = nn.Linear(context_dim, 2 * heads * dim_head, bias=False)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Attend from ``x`` ``(B, N, dim)`` to ``context`` ``(B, M, context_dim)``."""
        k, v = (_split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        q = _split_heads(self.to_q(x), self.heads)
        return self.to_out(_attend(q, k, v, self.scale))


class FeedForward(nn.Module):
    """Linear, exact GELU, linear. Indices 0 and 3 as in the official (dropout-padded) layout."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        """Create the layers.

        Args:
            dim: Input and output width.
            hidden_dim: Hidden width.

        """
        super().__init__()
        self.net = nn.Sequential(
            OrderedDict(
                [
                    ("0", nn.Linear(dim, hidden_dim)),
                    ("1", nn.GELU()),
                    ("3", nn.Linear(hidden_dim, dim)),
                ]
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the feed-forward network token-wise."""
        return self.net(x)


class PreNorm(nn.Module):
    """LayerNorm of the query tokens followed by a sub-layer (the context is not normalised)."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        """Wrap ``fn``.

        Args:
            dim: Token width.
            fn: The sub-layer.

        """
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.fn = fn

    def forward(self, x: torch.Tensor, *context: torch.Tensor) -> torch.Tensor:
        """Return ``fn(LN(x), *context)`` (without the residual)."""
        return self.fn(self.norm(x), *context)


class CrossAttentionStack(nn.Module):
    """Decoder layers: ``x += SA(LN x)``, ``x += CA(LN x, context)``, ``x += FF(LN x)``."""

    def __init__(self, sizes: DecoderSizes) -> None:
        """Create ``sizes.depth`` layers."""
        super().__init__()
        dim, heads, dim_head = sizes.dim, sizes.heads, sizes.dim_head
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(dim, SelfAttention(dim, heads, dim_head)),
                    PreNorm(dim, CrossAttention(dim, sizes.context_dim, heads, dim_head)),
                    PreNorm(dim, FeedForward(dim, sizes.mlp_dim)),
                ]
            )
            for _ in range(sizes.depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Run the layers on ``x`` ``(B, N, dim)`` with ``context`` ``(B, M, context_dim)``."""
        for block in self.layers:
            self_attn, cross_attn, ff = block.children()
            x = self_attn(x) + x
            x = cross_attn(x, context) + x
            x = ff(x) + x
        return x


class TransformerDecoder(nn.Module):
    """Token embedding, learned position embedding, then the cross-attention stack."""

    def __init__(self, sizes: DecoderSizes) -> None:
        """Create the decoder for one input token of width 1 (the ``'zero'`` input)."""
        super().__init__()
        self.to_token_embedding = nn.Linear(1, sizes.dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, sizes.dim))
        self.transformer = CrossAttentionStack(sizes)

    def forward(self, token: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Decode ``token`` ``(B or 1, 1, 1)`` against ``context``; returns ``(B, 1, dim)``."""
        x = self.to_token_embedding(token) + self.pos_embedding
        return self.transformer(x, context)


class SMPLTransformerDecoderHead(nn.Module):
    """Regress SMPL pose, shape and crop camera from the backbone feature map.

    A single all-zeros query token (``TRANSFORMER_INPUT='zero'``) is decoded against the
    backbone tokens; one readout step (``IEF_ITERS=1``) adds ``decpose``, ``decshape`` and
    ``deccam`` to the mean parameters held in the ``init_*`` buffers. Those buffers start at
    zero and are filled from a checkpoint or the weight recipe.
    """

    def __init__(self, sizes: DecoderSizes) -> None:
        """Create the head around a decoder of these sizes."""
        super().__init__()
        npose = 6 * SMPL_JOINTS
        self.transformer = TransformerDecoder(sizes)
        self.decpose = nn.Linear(sizes.dim, npose)
        self.decshape = nn.Linear(sizes.dim, SMPL_BETAS)
        self.deccam = nn.Linear(sizes.dim, 3)
        self.register_buffer("init_body_pose", torch.zeros(1, npose))
        self.register_buffer("init_betas", torch.zeros(1, SMPL_BETAS))
        self.register_buffer("init_cam", torch.zeros(1, 3))

    def forward(self, features: torch.Tensor) -> SMPLHeadOutput:
        """Predict SMPL parameters.

        Args:
            features: Backbone feature map ``(B, C, Hp, Wp)``, channel-first.

        Returns:
            The head's predictions, in the dtype of ``features``.

        """
        context = features.flatten(2).transpose(1, 2)  # (B, Hp * Wp, C), row-major tokens
        # The all-zeros query token. It is the same for every sample, so one (1, 1, 1) token
        # is decoded and broadcasts against the batch in cross-attention; no batch-sized
        # tensor is created, which keeps the batch axis dynamic in exported graphs.
        token = features.new_zeros(1, 1, 1)
        out = self.transformer(token, context).squeeze(1)
        pose_6d = self.decpose(out) + self.init_body_pose
        rotmats = rot6d_to_rotmat(pose_6d.unflatten(-1, (SMPL_JOINTS, 6)))
        return SMPLHeadOutput(
            global_orient=rotmats[:, :1],
            body_pose=rotmats[:, 1:],
            betas=self.decshape(out) + self.init_betas,
            pred_cam=self.deccam(out) + self.init_cam,
            pred_pose_6d=pose_6d,
        )
