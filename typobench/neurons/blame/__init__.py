"""Blame: which neurons moved a failure, found on a finished run.

* ``replay``: a finished run with the session that regenerates its attacked images (in memory or from disk);
* ``events``: failures, lifts and hijacks found in the run's predictions, regenerated;
* ``attribution``: a failure's logit difference attributed to neurons (gradient x activation), blame tables.

The lowest neurons layer: imports no other neurons subpackage. Import what you need from its module; the
package itself imports nothing.
"""
