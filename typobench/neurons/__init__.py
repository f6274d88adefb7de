"""Multimodal neurons behind typographic failures.

Subpackages, lowest first (a subpackage imports only its own layer and the ones before it; enforced by
``tests/test_architecture.py``):

* ``blame``: the finished run replayed (``replay``), its failures, lifts and hijacks (``events``), and their
  logit differences attributed to neurons (``attribution``);
* ``proof``: the clean reference images (``reference``), scored cheaply under any ablation (``scoring``), the
  blamed neurons ablated against random and activation-matched baselines (``ablation``), and blame with its
  causal check and verdict for one stage and event kind (``scope``); ``probes``: an L1 probe on the layer's
  neurons, swept to ~3 neurons per class, vs the full probe (``sparse_probe``);
* ``cards``: neuron cards and the multimodal test (``card``), drawn for the blamed neurons (``blamed``);
* ``featurevis``: feature visualization of named neurons, with the text facet;
* ``heads``: the same blame, proof and cards for a ViT's attention heads (``--heads``); ``microscope``:
  feature visualizations, excitation ratios and word views of the most blamed neurons (``--microscope K``);
* ``report`` (a module): neurons.json, the CSV tables, the cards, microscope.json and neurons.md;
* ``atlas``: the static HTML site of an analysis (``--atlas``; ``atlas.site.write_atlas`` rebuilds it);
* on top, the orchestration: ``analysis.analyze`` (the whole analysis), ``after_run.explain_run`` (a suite's
  [neurons] after a run, in its session), ``microscope_run`` (the microscope inside an analysis, or on a run
  an analysis already explained: it reads neurons.json and writes through ``report``).

The analysis options (``NeuronsConfig``) live in :mod:`typobench.suites.neurons_option`. Import what you need
from its module, e.g. ``from typobench.neurons.analysis import analyze``; the package and its subpackages
import nothing themselves.
"""
