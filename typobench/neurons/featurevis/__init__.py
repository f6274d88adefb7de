"""Feature visualization of the neurons the analysis names (``layer4:517``, ``resblocks.11.mlp:2047``).

* ``layers``: every hookable layer of a tower under the neurons analysis's naming (plus ResNet's lower stages);
* ``param``: image parameterisations (Fourier with 1/f scaling and decorrelated colour; plain pixels);
* ``transforms``: transformation robustness (pad, jitter, scale, rotate), seeded;
* ``objectives``: neuron, channel, direction, diversity, their sums and differences, one per image;
* ``optimise.visualize``: the optimisation loop, seeded and deterministic on CPU;
* ``relu``: Lucid's redirected ReLU gradient, so that a unit off on the starting image still moves;
* ``facets``: faceted feature visualization (Goh et al. 2021, appendix): the text facet;
* ``textvis``: the words whose *text* embedding a neuron's contribution to the image embedding points at,
  and their agreement with the written-word (pixel-side) facet of the neuron cards;
* ``measure``: how far a feature visualization excites its neuron beyond natural images.

May import ``blame``, ``proof``, ``probes`` and ``cards`` (below it; ``facets`` renders words as the cards
do). Import what you need from its module; the package itself imports nothing.
"""
