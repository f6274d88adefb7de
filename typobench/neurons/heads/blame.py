"""Blame and proof for the attention heads of a ViT (``typobench neurons --heads K``).

A head's blame for an event that moved the prediction from class ``a`` to ``b`` is its *direct
contribution* to the logit difference: its write into the class token, through ``out_proj``, the
linearised ``ln_post`` and ``proj`` (:func:`typobench.models.attention_heads.direct_contributions`),
read against ``d(logit_b - logit_a) / d f``, the gradient of the margin with respect to the image
embedding with the head's L2 normalisation held fixed (:func:`typobench.neurons.blame.attribution.linearised_head`).
For a zero-shot head that gradient is ``logit_scale * (t_b - t_a) / |f|``, the difference of the two
classes' text embeddings; the heads' terms and the rest of the embedding then sum exactly to the margin
(less the head's bias difference). Ranking (added / diff / attacked), the top-K ablation against random
and activation-matched heads, the held-out split and the groups are those of the neurons
(:mod:`typobench.neurons.proof.scope`); a head is ablated at every token, to 0 or to its mean output vector
over the clean reference images (averaged over tokens); "activation-matched" matches the mean norm of
the heads' outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from typobench.core.errors import UsageError
from typobench.models.attention_heads import DirectContributions, direct_contributions, head_means, head_space, \
    headwise_attention, residual_terms
from typobench.models.units import NeuronSpace, as_pixels, mean_over_positions
from typobench.neurons.proof.ablation import Events
from typobench.neurons.blame.attribution import Attribution, linearised_head
from typobench.neurons.featurevis.textvis import word_embeddings
from typobench.neurons.heads.cards import draw_head_cards
from typobench.suites.neurons_option import NeuronsConfig
from typobench.neurons.proof.reference import Reference
from typobench.neurons.blame.replay import RunReplay
from typobench.neurons.proof.scope import Ablator, Scope, Tables, analyse_scope
from typobench.neurons.proof.scoring import Scorer

HEADS_METHOD = ("attention heads of the last {blocks} block(s) (units 'resblocks.i.attn:h'); blame = each head's "
                "direct contribution to the class token (its output through out_proj, ln_post linearised with the "
                "scale of the whole residual stream, and proj) read against d(logit_to - logit_from)/d embedding "
                "with the L2 normalisation held fixed (for a zero-shot head: the difference of the two classes' "
                "text embeddings); ranked, ablated (zero, or the head's mean output vector over the clean reference "
                "images and tokens) and judged like the neurons, top {k} heads; activation = the L2 norm of a "
                "head's output averaged over tokens (the matched baseline matches its mean)")


def embeddings_and_terms(model: nn.Module, space: NeuronSpace, x: Tensor) -> DirectContributions:
    """One forward pass of ``model.features`` on pixels ``x`` [N, 3, H, W], split into its direct terms (heads
    computed one by one for the pass)."""
    with torch.no_grad(), residual_terms(model, space) as store:
        model.features(x)
    return direct_contributions(model, space, store)


def head_attribution(model: nn.Module, space: NeuronSpace, images: Tensor, from_idx: Sequence[int] | Tensor,
                     to_idx: Sequence[int] | Tensor, *, batch_size: int = 64) -> Attribution:
    """Per event: ``attr`` [N, U] each head's direct contribution to ``logit_to - logit_from``, ``acts``
    [N, U] its output norm averaged over tokens, ``margin`` [N], ``logits`` [N, C] (norm held fixed)."""
    if not hasattr(model, "features") or getattr(model, "head", None) is None:
        raise UsageError("head blame needs an ImageClassifier (features(pixels) and a head)")
    from_idx = torch.as_tensor(from_idx, dtype=torch.long).view(-1)
    to_idx = torch.as_tensor(to_idx, dtype=torch.long).view(-1)
    device = next(model.parameters()).device
    attrs, acts, margins, logits_all = [], [], [], []
    for start in range(0, len(images), batch_size):
        terms = embeddings_and_terms(model, space, as_pixels(images[start:start + batch_size]).to(device))
        rows = torch.arange(len(terms.embedding))
        with torch.enable_grad():
            f = terms.embedding.detach().float().requires_grad_(True)
            logits = linearised_head(model, f)
            margin = logits[rows, to_idx[start:start + batch_size].to(device)] - \
                logits[rows, from_idx[start:start + batch_size].to(device)]
            (direction,) = torch.autograd.grad(margin.sum(), f)
        attrs.append(torch.einsum("nud,nd->nu", terms.heads, direction).cpu())
        acts.append(mean_over_positions(space, terms.outputs).cpu())
        margins.append(margin.detach().cpu())
        logits_all.append(logits.detach().cpu())
    if not attrs:
        empty = torch.zeros(0, space.total)
        return Attribution(empty, empty.clone(), torch.zeros(0), torch.zeros(0, 0))
    return Attribution(torch.cat(attrs), torch.cat(acts), torch.cat(margins), torch.cat(logits_all))


def reference_contributions(model: nn.Module, space: NeuronSpace, images: Tensor, batch_size: int = 64) -> Tensor:
    """[n, U, D]: every head's direct contribution to the (raw) image embedding of each image."""
    device = next(model.parameters()).device
    parts = [embeddings_and_terms(model, space, as_pixels(images[s:s + batch_size]).to(device)).heads.cpu()
             for s in range(0, len(images), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, space.total, 0)


class HeadStudy:
    """The heads part of one neurons analysis: its units, reference statistics, scopes and cards.

    Built before anything is computed (a ResNet, or a K too large for the baselines, is refused at once);
    :meth:`prepare` reads the clean reference images, :meth:`analyse` blames and ablates one scope,
    :meth:`report` draws the cards and returns neurons.json's ``heads`` section.
    """

    def __init__(self, config: NeuronsConfig, model: nn.Module, seed: int):
        self.space = head_space(model, config.vit_blocks)
        if 2 * config.heads > self.space.total:
            raise UsageError(f"--heads {config.heads} leaves too few other heads for the baselines: the last "
                             f"{config.vit_blocks} block(s) have {self.space.total} heads; use --heads <= "
                             f"{self.space.total // 2} or more --vit-blocks")
        self.config = replace(config, top_k=config.heads)  # the scope machinery ablates config.top_k units
        self.model = model
        self.seed = seed
        self.analyses: list[dict[str, Any]] = []
        self.ablator: Ablator | None = None
        self.contributions = torch.zeros(0)

    def prepare(self, reference: Reference) -> Reference:
        """The heads' reference: the neuron analysis's clean images, their head activations, mean output
        vectors [U, d_head] (mean ablation) and direct contributions [n, U, D] (cards)."""
        batch = self.config.batch_size
        with headwise_attention(self.model, self.space):
            scorer = Scorer(self.model, self.space, reference.images, batch)
            means = head_means(self.model, self.space, reference.images, batch)
        self.contributions = reference_contributions(self.model, self.space, reference.images, batch)
        heads_reference = Reference(reference.positions, reference.images, reference.labels, scorer, means)
        self.ablator = Ablator(self.model, self.space, heads_reference, self.config, self.seed)
        return heads_reference

    def analyse(self, stage: str, kind: str, frame: pd.DataFrame, attacked: Tensor, clean: Tensor, events: Events,
                tables: Tables) -> dict[str, Any]:
        """Blame, ablation and verdict of the heads on one stage and event kind (rows added to ``tables``)."""
        if self.ablator is None:
            raise RuntimeError("HeadStudy.prepare must run before analyse")
        batch = self.config.batch_size
        with headwise_attention(self.model, self.space):
            attribution = [head_attribution(self.model, self.space, images, events.from_idx, events.to_idx,
                                            batch_size=batch) for images in (attacked, clean)]
            entry = {"stage": stage, "kind": kind, "n_events": len(frame),
                     **analyse_scope(self.ablator, Scope(stage, kind, frame, *attribution, events), tables)}
        self.analyses.append(entry)
        return entry

    def report(self, replay: RunReplay, vocab_words: list[str], log: Callable[[str], None]) -> dict[str, Any]:
        """neurons.json's ``heads`` section (its ``cards`` carry ``_render`` for the PNG cards); the text
        pool of the TextSpan directions is embedded by the run's own text tower."""
        if self.ablator is None:
            raise RuntimeError("HeadStudy.prepare must run before report")
        loaded = replay.session.model
        cards = draw_head_cards(self.config, self.model, self.space, self.ablator.reference, self.contributions,
                                replay.classnames, replay.side, self.analyses, vocab_words,
                                lambda words: word_embeddings(loaded.model, loaded.tokenizer, words), log)
        return {"layers": self.space.describe(), "top_k": self.config.heads,
                "method": HEADS_METHOD.format(blocks=self.config.vit_blocks, k=self.config.heads),
                "reference": {"n": len(self.ablator.reference.positions)},
                "analyses": self.analyses, "cards": cards}


__all__ = ["HEADS_METHOD", "HeadStudy", "embeddings_and_terms", "head_attribution", "reference_contributions"]
