"""The atlas: a static, offline HTML site of a neurons analysis (``typobench neurons ... --atlas``).

* ``gather``: what the site shows, read from the files the analysis wrote (neurons.json, sparse_probe.json,
  microscope.json, neuron_examples/) or from the report in memory;
* ``examples``: the dataset examples of each carded neuron, saved as images for the site;
* ``html``: escaping, links, tables and the page shell (inline CSS, an image check, no network);
* ``pages``: the index (units by blame), one page per neuron or head, the sparse-probe page;
* ``site.write_atlas``: the folder: pages plus copies of every image they show, linked relatively.
* ``heads_page``: the pages of a heads survey (``typobench heads``): ``heads.html`` and one page per head.

May import every neurons subpackage and ``report`` (below it: the atlas reads what the analysis wrote),
not the orchestration above it (``analysis``, ``after_run``, ``microscope_run``).
Import what you need from its module; the package itself imports nothing.
"""
