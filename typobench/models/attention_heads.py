"""Attention heads of open_clip ViT towers as units: head-by-head attention and each head's direct
contribution to the image embedding.

open_clip's ``ResidualAttentionBlock`` calls ``nn.MultiheadAttention``, whose fused forward never runs
``out_proj`` as a module: a head's output is never a tensor anyone can hook. :func:`headwise_attention`
swaps, for as long as the block lasts, the attention of the chosen blocks for :class:`HeadwiseAttention`,
which computes the same attention head by head (the same weights, equal within float rounding) and
passes the per-head outputs [N, L_tokens, H, d_head] (before ``out_proj``) through an identity module,
``heads``: the hook point. :func:`head_space` names those outputs as a unit layer ``resblocks.{i}.attn``
with one unit per head (``resblocks.3.attn:2``), so ``capture``, ``ablate`` (zero, or a [total, d_head]
mean) and ``unit_activations`` of :mod:`typobench.models.units` work on heads as on neurons; a head's
scalar activation is the L2 norm of its output vector.

Direct contributions (Gandelsman et al.'s TextSpan decomposition). The image embedding of a class-token
ViT is ``proj^T ln_post(r)`` with r the class token's final residual stream, a sum of terms: the
embeddings (after ``ln_pre``), and per block its attention (sum over heads h of ``ls_1(z_h W_o,h^T)``,
plus ``ls_1(out_proj bias)``) and its MLP (``ls_2(mlp)``). ``ln_post`` is linearised with its scale taken
from the whole r: a term t contributes ``proj^T (gamma * (t - mean t) / sigma(r))``, and beta (``ln_post``'s
bias) contributes ``proj^T beta``. The terms then sum exactly to the embedding. This is the head's
*direct* effect: what it writes into the class token that no later block rewrites.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.models.units import NeuronLayer, NeuronSpace, as_pixels, capture, image_tower, path_of

HEAD_KIND = "vit-attn-head"


class HeadwiseAttention(nn.Module):
    """``nn.MultiheadAttention`` (self-attention with a packed in-projection, as open_clip builds it)
    computed head by head. ``heads`` (an identity) outputs the per-head values [N, L, H, d_head] before
    ``out_proj``, batch first whatever the wrapped module's layout; hooks on it see and edit every head."""

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise UsageError("attention heads need open_clip's plain self-attention (packed q/k/v, no bias_k, "
                             "no zero attention): this model's attention is different")
        self.mha = mha
        self.heads = nn.Identity()

    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None,
                key_padding_mask: Tensor | None = None, need_weights: bool = False, attn_mask: Tensor | None = None,
                average_attn_weights: bool = True, is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        mha = self.mha
        if (key is not None and key is not query) or (value is not None and value is not query):
            raise UsageError("head-by-head attention computes self-attention only (key and value are the query)")
        if key_padding_mask is not None or is_causal:
            raise UsageError("head-by-head attention takes no key padding mask and no causal flag (ViT towers "
                             "use neither)")
        x = query if mha.batch_first else query.transpose(0, 1)  # [N, L, W]
        n, length, _ = x.shape
        heads, d = mha.num_heads, mha.head_dim
        q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).view(n, length, 3, heads, d).unbind(2)
        scores = torch.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(d)
        if attn_mask is not None:
            mask = attn_mask.view(n, heads, length, length) if attn_mask.dim() == 3 else attn_mask
            scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        probs = F.dropout(scores.softmax(-1), p=mha.dropout, training=self.training)
        z = self.heads(torch.einsum("nhqk,nkhd->nqhd", probs, v))  # [N, L, H, d]
        out = mha.out_proj(z.reshape(n, length, heads * d))
        out = out if mha.batch_first else out.transpose(0, 1)
        weights = (probs.mean(1) if average_attn_weights else probs) if need_weights else None
        return out, weights


def headwise(mha: nn.Module) -> HeadwiseAttention:
    """The one :class:`HeadwiseAttention` of ``mha`` (made on first use, then reused, so hooks registered
    on its ``heads`` before a swap fire during it)."""
    if isinstance(mha, HeadwiseAttention):
        return mha
    wrapper = mha.__dict__.get("_typobench_headwise")
    if wrapper is None:
        wrapper = HeadwiseAttention(mha)
        # Kept in the instance dict, not as a submodule: the model's modules and state_dict stay as they are.
        object.__setattr__(mha, "_typobench_headwise", wrapper)
    return wrapper


def vit_blocks_of(model: nn.Module) -> nn.ModuleList:
    """The ``resblocks`` of an open_clip ViT image tower (UsageError for any other tower)."""
    visual = image_tower(model)
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is None or not len(blocks) or not all(hasattr(b, "attn") and hasattr(b, "ls_1") for b in blocks):
        raise UsageError(f"attention heads need an open_clip VisionTransformer image tower; this model's is a "
                         f"{type(visual).__name__}: drop --heads (a ResNet's units are its layer4 channels)")
    return blocks


def head_space(model: nn.Module, vit_blocks: int = 1) -> NeuronSpace:
    """The heads of the last ``vit_blocks`` blocks, one layer ``resblocks.{i}.attn`` per block, unit = head."""
    if vit_blocks < 1:
        raise UsageError(f"--vit-blocks must be >= 1, got {vit_blocks}")
    blocks = vit_blocks_of(model)
    layers = []
    for i in range(max(0, len(blocks) - vit_blocks), len(blocks)):
        wrapper = headwise(blocks[i].attn)
        layers.append(NeuronLayer(f"resblocks.{i}.attn", f"{path_of(model, blocks[i])}.attn.heads", wrapper.heads,
                                  HEAD_KIND, wrapper.mha.num_heads, 2, 0, block=i, unit_size=wrapper.mha.head_dim))
    return NeuronSpace(layers)


@contextmanager
def headwise_attention(model: nn.Module, space: NeuronSpace) -> Iterator[None]:
    """Within the block, the attention of every block that has a head layer in ``space`` runs head by head
    (:class:`HeadwiseAttention`); the original modules are back on exit, whatever happens inside."""
    blocks = vit_blocks_of(model)
    swapped = []
    try:
        for layer in space.layers:
            block = blocks[layer.block] if layer.kind == HEAD_KIND else None
            if block is not None and not isinstance(block.attn, HeadwiseAttention):
                swapped.append((block, block.attn))
                block.attn = headwise(block.attn)
        yield
    finally:
        for block, mha in reversed(swapped):
            block.attn = mha


@dataclass
class DirectContributions:
    """The class token's image embedding [N, D] split into terms (see the module docstring):
    ``heads`` [N, U, D] (the heads of the space, in its order), ``parts`` ``{source: [N, D]}`` (everything
    else: ``embeddings``, ``resblocks.{i}.attn`` of blocks without head units, ``resblocks.{i}.attn.bias``,
    ``resblocks.{i}.mlp``, ``ln_post.bias``), ``embedding`` [N, D] (the tower's own output) and ``outputs``
    (each head layer's captured output [N, L, H, d_head])."""

    heads: Tensor
    parts: dict[str, Tensor]
    embedding: Tensor
    outputs: dict[str, Tensor]

    def rest(self) -> Tensor:
        """[N, D]: the sum of every term that is not a head of the space."""
        return torch.stack(list(self.parts.values())).sum(0)


def _class_token(x: Tensor, batch_first: bool) -> Tensor:
    return x[:, 0] if batch_first else x[0]


@contextmanager
def residual_terms(model: nn.Module, space: NeuronSpace) -> Iterator[dict[str, Tensor]]:
    """Head-by-head attention for the head layers of ``space`` and hooks recording, during one forward pass
    of ``model``, what :func:`direct_contributions` needs: the head layers' outputs (keyed by layer name),
    the embeddings, each block's attention and MLP outputs, the final residual stream and the tower's output."""
    visual = image_tower(model)
    blocks = vit_blocks_of(model)
    with headwise_attention(model, space), capture(space) as store:
        def keep(key: str):
            def hook(module, inputs, output):
                store[key] = output[0] if isinstance(output, tuple) else output
            return hook

        hooks = [(blocks[-1], "final"), (visual, "embedding")]
        hooks += [(module, f"{part}_out.{i}") for i, b in enumerate(blocks) for part, module in
                  (("attn", b.attn), ("mlp", b.mlp))]
        handles = [blocks[0].register_forward_pre_hook(lambda m, inputs: store.__setitem__("embeddings", inputs[0]))]
        try:
            handles += [module.register_forward_hook(keep(key)) for module, key in hooks]
            yield store
        finally:
            for handle in handles:
                handle.remove()


def direct_contributions(model: nn.Module, space: NeuronSpace, store: dict[str, Tensor]) -> DirectContributions:
    """Split the class token's image embedding into the terms recorded by :func:`residual_terms` (no grad)."""
    visual = image_tower(model)
    if getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok" \
            or not isinstance(visual.ln_post, nn.LayerNorm):
        raise UsageError("direct contributions of heads need a class-token ViT (pool_type 'tok', no attention "
                         "pooling, a final LayerNorm): this tower pools differently")
    blocks = vit_blocks_of(model)
    batch_first = bool(getattr(visual.transformer, "batch_first", True))
    with torch.no_grad():
        final = _class_token(store["final"], batch_first).float()
        sigma = (final.var(-1, unbiased=False, keepdim=True) + visual.ln_post.eps).sqrt()  # [N, 1]
        proj = visual.proj.float() if getattr(visual, "proj", None) is not None else None

        def write(term: Tensor) -> Tensor:  # a residual term [..., W] -> its share of the embedding [..., D]
            out = (term - term.mean(-1, keepdim=True)) / sigma.view(-1, *[1] * (term.dim() - 1)) \
                * visual.ln_post.weight.float()
            return out if proj is None else out @ proj

        parts = {"embeddings": write(_class_token(store["embeddings"], batch_first).float())}
        heads = []
        selected = {layer.block: layer for layer in space.layers if layer.kind == HEAD_KIND}
        for i, block in enumerate(blocks):
            if i in selected:
                heads.append(write(_head_terms(block, selected[i], store[selected[i].name])))
                bias = headwise(block.attn).mha.out_proj.bias
                bias = final.new_zeros(final.shape) if bias is None else bias.float().expand_as(final).clone()
                parts[f"resblocks.{i}.attn.bias"] = write(block.ls_1(bias))
            else:
                parts[f"resblocks.{i}.attn"] = write(block.ls_1(
                    _class_token(store[f"attn_out.{i}"], batch_first).float().clone()))
            parts[f"resblocks.{i}.mlp"] = write(block.ls_2(
                _class_token(store[f"mlp_out.{i}"], batch_first).float().clone()))
        beta = visual.ln_post.bias.float().expand_as(final)
        parts["ln_post.bias"] = beta if proj is None else beta @ proj
        head_terms = torch.cat(heads, dim=1) if heads else final.new_zeros(len(final), 0, parts["embeddings"].shape[-1])
    outputs = {layer.name: store[layer.name] for layer in space.layers}
    return DirectContributions(head_terms, parts, store["embedding"], outputs)


def _head_terms(block: nn.Module, layer: NeuronLayer, output: Tensor) -> Tensor:
    """[N, H, W]: each head's write into the class token's residual stream, ``ls_1(z_h W_o,h^T)``."""
    mha = headwise(block.attn).mha
    weight = mha.out_proj.weight.float().view(-1, layer.units, layer.unit_size)  # [W, H, d]
    return block.ls_1(torch.einsum("nhd,whd->nhw", output[:, 0].float(), weight))


@torch.no_grad()
def head_means(model: nn.Module, space: NeuronSpace, images: Tensor, batch_size: int = 64) -> Tensor:
    """[total, d_head]: every head's output vector averaged over ``images`` and tokens (mean ablation's values)."""
    device = next(model.parameters()).device
    sums, count = None, 0
    for start in range(0, len(images), batch_size):
        with headwise_attention(model, space), capture(space) as store:
            model(as_pixels(images[start:start + batch_size]).to(device))
        part = torch.cat([store[layer.name].float().sum((0, 1)) for layer in space.layers]).cpu()
        sums = part if sums is None else sums + part
        count += store[space.layers[0].name].shape[0] * store[space.layers[0].name].shape[1]
    if sums is None:
        raise UsageError("no images to average the heads' outputs over")
    return sums / count


__all__ = ["HEAD_KIND", "DirectContributions", "HeadwiseAttention", "direct_contributions", "head_means",
           "head_space", "headwise", "headwise_attention", "residual_terms", "vit_blocks_of"]
