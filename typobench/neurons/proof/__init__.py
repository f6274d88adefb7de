"""Proof: the causal check of the blame, by ablation.

* ``scoring``: a fixed set of images scored many times under different ablations, cheaply (``Scorer``);
* ``reference``: the clean reference images: activation statistics, mean-ablation values, the clean accuracy
  an ablation costs, the dataset examples of the cards;
* ``ablation``: the blamed neurons ablated against random and activation-matched baselines;
* ``scope``: blame and its ablation for one stage and event kind (held out) and each group, verdicts.

May import ``blame`` (below it). Import what you need from its module; the package itself imports nothing.
"""
