"""``typobench defend``: a suite on the model with no defense and with each given defense, side by side.

* ``rows``: the defense rows (``none`` first) and what each defense was chosen on, checked disjoint from
  the images it is scored on;
* ``runner.run_defend``: one harness run per row in one session (model loaded once), written to
  ``defend.json``/``.csv``/``.md``/``.png``;
* ``table``: accuracy per stage, written-class rate, clean cost with a paired interval, adaptive vs transfer PGD;
* ``plot``: the picture.

Import what you need from its module; the package itself imports nothing.
"""
