"""Every command-line entry point refuses an unknown or misspelt flag, naming the right one."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (module, a misspelt flag, the flag it should suggest)
TYPOS = [
    ("beam_pipelines.build", "--outptu_dir", "output_dir"),
    ("beam_pipelines.preview", "--buld_dir", "build_dir"),
    ("beam_pipelines.make_synthetic", "--output_dri", "output_dir"),
    ("trainers.cv", "--workdri", "workdir"),
    ("trainers.report", "--workdri", "workdir"),
    ("trainers.export", "--outptu_dir", "output_dir"),
    ("eegmobile.stage", "--modle", "model"),
]


@pytest.mark.parametrize("module,typo,meant", TYPOS)
def test_a_misspelt_flag_stops_the_command_and_names_the_right_one(module, typo, meant, tmp_path):
  run = subprocess.run([sys.executable, "-m", module, typo, "x"],
                       cwd=tmp_path,
                       env={
                           **os.environ, "PYTHONPATH": ROOT
                       },
                       capture_output=True,
                       text=True,
                       timeout=120)
  assert run.returncode != 0
  message = run.stderr.lower()
  assert typo.lstrip("-") in message and "did you mean" in message and meant in message
  assert os.listdir(tmp_path) == []  # nothing was done


def _defines_flags(path: str) -> bool:
  with open(path) as f:
    return "flags.DEFINE" in f.read()


def _imported_modules(path: str) -> set[str]:
  """Dotted names of the project modules a test file imports (anywhere in it)."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
      names.add(node.module)
  return names


def test_tests_import_at_most_one_entry_point_module():
  # pytest imports every test module into one process; two entry modules there collide on
  # shared flag names (absl DuplicateFlagError) and CI fails at collection. CLIs are tested
  # through subprocesses; their logic lives in flag-free modules.
  entry_points = set()
  for package in ("eegmobile", "beam_pipelines", "trainers", "tfrecords"):
    for name in os.listdir(os.path.join(ROOT, package)):
      path = os.path.join(ROOT, package, name)
      if name.endswith(".py") and _defines_flags(path):
        entry_points.add(f"{package}.{name[:-3]}")
  assert {"beam_pipelines.build", "trainers.cv"} <= entry_points
  imported = {}
  for name in sorted(os.listdir(os.path.join(ROOT, "tests"))):
    if name.endswith(".py"):
      for module in _imported_modules(os.path.join(ROOT, "tests", name)) & entry_points:
        imported.setdefault(module, []).append(name)
  assert len(imported) <= 1, f"test modules import several entry points: {imported}"
