"""The ViTPose-H style ViT backbone of HMR2.

Parameter names follow the official ``hmr2/models/backbones/vit.py``, so the official
``backbone.*`` checkpoint entries load into :class:`ViTBackbone` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

#: LayerNorm epsilon of every backbone norm (the official ``partial(nn.LayerNorm, eps=1e-6)``).
NORM_EPS = 1e-6


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection: a strided convolution with a little zero padding."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, padding: int) -> None:
        """Create the projection.

        Args:
            in_chans: Input image channels.
            embed_dim: Token width.
            patch_size: Kernel size and stride.
            padding: Zero padding on every side (2 in HMR2).

        """
        super().__init__()
        self.proj = nn.Conv2d(
            in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, padding=padding
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, C_in, H, W)`` images to ``(B, Hp * Wp, C)`` tokens in row-major order."""
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection laid out as (3, heads, dim)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        """Create the projections.

        Args:
            dim: Token width; the head width is ``dim // num_heads``.
            num_heads: Number of heads.

        """
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the tokens of ``x`` of shape ``(B, N, C)``."""
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).flatten(2))


class Mlp(nn.Module):
    """Two linear layers with an exact (erf) GELU in between."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        """Create the layers.

        Args:
            dim: Input and output width.
            hidden_dim: Hidden width.

        """
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP token-wise."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        """Create the block.

        Args:
            dim: Token width.
            num_heads: Attention heads.
            mlp_ratio: MLP hidden width as a multiple of ``dim``.

        """
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(B, N, C)`` tokens."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTBackbone(nn.Module):
    """ViT backbone returning a channel-first feature map.

    There is no class token, but ``pos_embed`` keeps its slot 0, which is added to every
    token on top of the per-token entries ``1..N`` (as the official code does).
    """

    def __init__(
        self,
        *,
        image_size: tuple[int, int],
        patch_size: int,
        patch_padding: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
        in_chans: int = 3,
    ) -> None:
        """Create the backbone.

        Args:
            image_size: Input ``(H, W)``; fixes the token grid, there is no interpolation.
            patch_size: Patch kernel size and stride.
            patch_padding: Zero padding of the patch convolution.
            embed_dim: Token width.
            depth: Number of blocks.
            num_heads: Attention heads per block.
            mlp_ratio: MLP hidden width as a multiple of ``embed_dim``.
            in_chans: Input image channels.

        """
        super().__init__()
        self.grid = tuple(
            (size + 2 * patch_padding - patch_size) // patch_size + 1 for size in image_size
        )
        num_tokens = self.grid[0] * self.grid[1]
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size, patch_padding)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.last_norm = nn.LayerNorm(embed_dim, eps=NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode images.

        Args:
            x: Normalised images ``(B, 3, H, W)`` of the configured size.

        Returns:
            Feature map ``(B, C, Hp, Wp)``, channel-first (``(B, 1280, 16, 12)`` for HMR2).

        """
        x = self.patch_embed(x) + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        return self.last_norm(x).transpose(1, 2).unflatten(2, self.grid)
