"""The neuron microscope: feature visualizations and word views of the neurons an analysis blamed
(``typobench neurons --microscope K``; microscope.json).

* ``core``: settings, inputs and ``run_microscope``: the plain and text-faceted feature visualizations,
  excitation ratios, read classes and word agreement, with microscope.json's schema;
* ``views``: feature visualizations of named neurons, optimised together in one batch;
* ``words``: what a neuron reads (pixel side) and means (text side), over the cards' vocabulary;
* ``output``: the PNGs under ``microscope/`` and the microscope's section of neurons.md.

The microscope on a run (inside an analysis, or on a run already explained) is
:mod:`typobench.neurons.microscope_run`, above ``report``, which writes microscope.json. May import ``blame``,
``proof``, ``probes``, ``cards`` and ``featurevis`` (below it). Import what you need from its module; the
package itself imports nothing.
"""
