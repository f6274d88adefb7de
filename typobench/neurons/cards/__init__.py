"""Neuron cards: what a neuron responds to, written and seen.

* ``card``: the method: the vocabulary, the written-word (text) facet, the dataset examples, the multimodal
  test, a card's facts and its PNG;
* ``blamed``: the cards of every neuron the stage scopes blamed, with the layer-wide base rate of the test.

May import ``blame`` and ``proof`` (``blamed`` takes its dataset examples from ``proof.reference``). Import
what you need from its module; the package itself imports nothing.
"""
