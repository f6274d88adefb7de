"""toyclip: a small CLIP trained here on CIFAR-10 photos, words and colours, shipped as the built-in ``toyclip``.

A *model organism* for typographic attacks: its training images contain written words (rendered by the
project's own renderer) and their captions sometimes name them, the same cause as in CLIP. See
``typobench/models/TOYCLIP_CARD.md`` for the recipe and the measured metrics.

* ``typobench.toyclip.data``: the training mixture (``Mixture``, ``MixtureConfig``, ``PhotoBank``),
* ``typobench.toyclip.loss``: the multi-positive contrastive loss,
* ``typobench.toyclip.train``: the training script (``python -m typobench.toyclip.train``).
"""
