"""DESIGN.md's dependency rule: the statistics, the row checks and the classifier import no Django."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A fresh interpreter in which importing Django fails, so a module that needs it cannot load.
PROBE = """
import importlib, importlib.abc, sys

class NoDjango(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "django" or name.startswith("django."):
            raise ImportError("imports Django: " + name)

sys.meta_path.insert(0, NoDjango())
importlib.import_module(sys.argv[1])
"""
PURE_MODULES = [
    *(
        f"labelqa.analytics.{name}"
        for name in ("stats", "consensus", "agreement", "correction_agreement", "report", "spreadsheet", "charts")
    ),
    "labelqa.catalog.rows",
    "worker.classifier",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_the_module_loads_without_django(module):
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE, module], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
