"""Utilities every layer may use and that import nothing else of typobench: errors, atomic writes,
the content-keyed tensor cache, device and precision (``Runtime``), rates with intervals, timers."""
