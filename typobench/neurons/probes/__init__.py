"""Probes on the analysed layer's neurons.

* ``sparse_probe``: a sparse (L1) linear probe, swept to ~3 neurons per class, vs the full probe
  (``--sparse-probe``; sparse_probe.json and its section of neurons.md).

May import ``blame`` (below it). Import what you need from its module; the package itself imports nothing.
"""
