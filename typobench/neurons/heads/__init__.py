"""The attention heads of a ViT as units of the neurons analysis (``typobench neurons --heads K``); not the
classifier heads of :mod:`typobench.heads`.

* ``blame``: ``HeadStudy``: the heads' blame (direct contributions to the logit difference), their ablation
  against random and activation-matched heads, and their verdicts, with the neurons' scope machinery;
* ``cards``: the cards of the blamed heads: written words, dataset examples along the main text direction,
  TextSpan text directions.
* ``survey``: every head at once (``typobench heads``): direct contribution, TextSpan text basis on clean and
  typographic images, top images, and the accuracy change when its class-token output is ablated.

May import ``blame``, ``proof``, ``probes``, ``cards`` and ``featurevis`` (below it). Import what you need from
its module; the package itself imports nothing.
"""
