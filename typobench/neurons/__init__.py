"""Multimodal neurons behind typographic failures.

* ``options``: NeuronsConfig and the allowed values (what ``typobench neurons`` and ``[neurons]`` accept);
* ``replay``: a finished run with the session that regenerates its attacked images (in memory or from disk);
* ``events``: failures, lifts and hijacks found in the run's predictions, regenerated;
* ``hooks``, ``scoring``: the neurons of a classifier, capturing and ablating them;
* ``attribution`` (blame), ``ablation`` (proof), ``scope`` (both for one stage and event kind, verdicts);
* ``reference``: the clean reference images; ``cards``, ``blamed_cards``: neuron cards, multimodal test;
* ``analysis.analyze``: the whole analysis; ``after_run.explain_run``: a suite's [neurons] after a run;
* ``report``: neurons.json, the CSV tables, the cards and neurons.md.
* ``sparse_probe``: an L1 probe on the layer's neurons, swept to ~3 neurons per class, vs the full probe;
* ``atlas``: the static HTML site of an analysis (``--atlas``; ``atlas.site.write_atlas`` rebuilds it).
* ``head_blame``, ``head_cards``: the same blame, proof and cards for a ViT's attention heads (``--heads``).
* ``microscope`` (``_views``, ``_words``, ``_run``, ``_output``): feature visualizations, excitation ratios and
  word views of the most blamed neurons (``--microscope K``; microscope.json).

Import what you need from its module, e.g. ``from typobench.neurons.analysis import analyze``; the
package itself imports nothing, so that suites can read the analysis options (``options``) without
loading the analysis.
"""
