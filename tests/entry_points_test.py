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
  """Whether the module defines flags when imported (a module-level DEFINE_* or
  `cli.define_flags` call), not merely code that can define them."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  for node in tree.body:
    for call in ast.walk(node):
      if isinstance(call, ast.FunctionDef):
        break
      if isinstance(call, ast.Call) and isinstance(
          call.func, ast.Attribute) and (call.func.attr.startswith("DEFINE") or
                                         call.func.attr == "define_flags"):
        return True
  return False


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
    for directory, _, names in os.walk(os.path.join(ROOT, package)):
      for name in names:
        if name.endswith(".py") and _defines_flags(os.path.join(directory, name)):
          module = os.path.relpath(os.path.join(directory, name[:-3]), ROOT)
          entry_points.add(module.replace(os.sep, "."))
  assert {"beam_pipelines.build", "trainers.cv", "eegmobile.staging.cli"} <= entry_points
  assert "eegmobile.cli" not in entry_points  # it defines flags only when a command asks
  imported = {}
  for directory, _, names in os.walk(os.path.join(ROOT, "tests")):
    for name in sorted(names):
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        for module in _imported_modules(path) & entry_points:
          imported.setdefault(module, []).append(os.path.relpath(path, ROOT))
  assert len(imported) <= 1, f"test modules import several entry points: {imported}"
