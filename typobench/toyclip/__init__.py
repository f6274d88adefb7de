"""toyclip: a small CLIP trained here on CIFAR-10 photos, words and colours, shipped as the built-in ``toyclip``.

A *model organism* for typographic attacks: its training images contain written words (rendered by the
project's own renderer) and their captions sometimes name them, the same cause as in CLIP. See
``typobench/models/TOYCLIP_CARD.md`` for the recipe and the measured metrics. The same code trains the ViT
organism ``toyclip-vit`` (``--model toyclip-vit``; ``typobench/models/TOYCLIP_VIT_CARD.md``).

* ``typobench.toyclip.vocabulary``: the words, colours, caption templates and fonts trained on (and held out),
* ``typobench.toyclip.recipes``: ``MixtureConfig``, the training distribution, and the named ``PRESETS``,
* ``typobench.toyclip.photos``: ``PhotoBank``, CIFAR-10 training photos in memory,
* ``typobench.toyclip.draws``, ``typobench.toyclip.made_up_words``: random colours, choices and made-up words,
* ``typobench.toyclip.mixture``: ``Mixture``, the training batches (a pure function of seed and step),
* ``typobench.toyclip.loss``: the multi-positive contrastive loss,
* ``typobench.toyclip.model``: the organisms' open_clip models (created, quickly measured, saved),
* ``typobench.toyclip.train``: the training script (``python -m typobench.toyclip.train``),
* ``typobench.toyclip.measure``: the model card's measurements (``python -m typobench.toyclip.measure``), judged by
  ``toyclip.checks`` (each organism's thresholds) on the figures of ``toyclip.figures``,
* ``typobench.toyclip.robust``: robust fine-tuning of the image tower, FARE or TeCoA (``python -m typobench.toyclip.robust``;
  objectives and data in ``robust_loss``, validation in ``robust_eval``), the organisms ``toyclip-fare`` and ``toyclip-tecoa``,
* ``typobench.toyclip.robust_measure``: their cards' measurements, paired against toyclip.
"""
