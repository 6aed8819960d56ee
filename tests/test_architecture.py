"""The import rules of `.importlinter` hold, and the check fails when one is broken."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and the contracts, to break on purpose."""
    for package in ("dashboard", "sandbox"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    return tmp_path


def test_the_tree_keeps_every_contract(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("edits, broken", [
    # A service reaching up into the task layer (the circle this check replaced).
    ([("dashboard/services/sync_jobs.py", "from ..tasks import sync as _tasks")],
     "dashboard.services.sync_jobs -> dashboard.tasks.sync"),
    # An import hidden inside a function counts too.
    ([("dashboard/sync/specs.py", "def _late():\n    from ..models import Company")],
     "dashboard.sync.specs -> dashboard.models"),
    # A circle between two modules of one layer.
    ([("dashboard/services/webhooks.py", "from . import sync_runner as _runner"),
      ("dashboard/services/sync_runner.py", "from . import webhooks as _webhooks")],
     "no import circle, at any depth BROKEN"),
    ([("sandbox/api.py", "import dashboard.config as _config")],
     "sandbox.api -> dashboard.config"),
], ids=["upward", "inside-a-function", "circle", "simulator"])
def test_an_upward_import_or_a_circle_breaks_the_check(tree, edits, broken):
    for module, line in edits:
        path = tree / module
        path.write_text(path.read_text() + "\n\n" + line + "\n")
    result = lint(tree)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout
