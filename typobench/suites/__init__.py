"""Declarative attack suites: TOML files that state every parameter of a protocol.

``schema`` declares each stage kind once; ``suite`` parses a file into stages (``typobench.stages``);
``files`` finds suites (shipped, or a user's folder); ``edit`` changes a suite by parameter path
(sweeps, overrides) and writes it back to TOML.
"""

from typobench.suites.files import SuiteFile, find_suites, list_suites, published_suite_path, resolve_suite_path
from typobench.suites.kinds import STAGE_SCHEMAS
from typobench.suites.suite import Suite, parse_suite, read_suite, read_suite_or_clean

__all__ = ["STAGE_SCHEMAS", "Suite", "SuiteFile", "find_suites", "list_suites", "parse_suite", "published_suite_path",
           "read_suite", "read_suite_or_clean", "resolve_suite_path"]
