"""Builders, constants and helpers that more than one test module uses; no tests live here.

A test module never imports another test module: what two of them share is here (or, when it is a fixture, in a
``conftest.py``), so moving or renaming a test file breaks nothing else.

* :mod:`tests.support.incidents`: ``make_incident`` and ``RENAME_ERROR``, a stored incident as the failure callback
  writes it;
* :mod:`tests.support.demo`: the demo shop built into a warehouse, prod fingerprints, project tree hashes;
* :mod:`tests.support.fixes`: the demo project as the fix rules read it (files, manifest slice, incidents, triages, ``propose``);
* :mod:`tests.support.bundles`: temp DAG bundles (the ``dag_bundles`` fixtures of ``tests/integration/conftest.py``);
* :mod:`tests.support.rides_e2e`: the second project's end-to-end scenarios, split over two test modules;
* :mod:`tests.support.runs` and :mod:`tests.support.step_worker`: a repair step run over plain values, or in its
  own process as a worker would run it.

pytest rewrites the asserts of the modules registered below as in test modules, so a failing helper shows its values.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite(
    "tests.support.bundles",
    "tests.support.demo",
    "tests.support.fixes",
    "tests.support.incidents",
    "tests.support.rides_e2e",
)
