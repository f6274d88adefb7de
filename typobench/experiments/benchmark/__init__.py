"""``typobench benchmark``: one suite on one model over many data sets, as FARE's and clip_benchmark's tables.

* ``runner.run_benchmark``: the model loaded once, every data set checked before any runs, one harness run per
  data set, written to ``benchmark.json``/``.csv``/``.md``;
* ``table``: a row per data set (accuracy per stage with its interval and n), then their unweighted mean.

Import what you need from its module; the package itself imports nothing.
"""
