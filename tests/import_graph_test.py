"""The product's import graph: layers only import downwards, no circle, lazy imports explained.

Layers, bottom up: `eegmobile` (the core and the staging app), `tfrecords` (the record
format and the tf.data readers), `beam_pipelines` (the build) and `trainers`. Read with
`ast` from the source, function-level imports included (they hide circles).
"""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("eegmobile", "tfrecords", "beam_pipelines", "trainers")
# What each package may not import (the layers above it).
FORBIDDEN = {
    "eegmobile": ("tfrecords", "beam_pipelines", "trainers"),
    "tfrecords": ("beam_pipelines", "trainers"),
}


def _modules() -> dict[str, str]:
  """{dotted module name: file path} of every product module."""
  found = {}
  for package in PACKAGES:
    for directory, _, names in os.walk(os.path.join(ROOT, package)):
      for name in names:
        if name.endswith(".py"):
          path = os.path.join(directory, name)
          dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
          found[dotted.removesuffix(".__init__")] = path
  return found


def _imports(path: str, modules: dict[str, str]) -> list[tuple[str, int, bool]]:
  """(product module imported, line, inside a function) for every import in a file."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  in_function = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      in_function.update(id(n) for n in ast.walk(node) if n is not node)
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      targets = [
          f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
          for alias in node.names
      ]
    else:
      continue
    out += [(t, node.lineno, id(node) in in_function) for t in targets]
  return out


def _graph() -> dict[str, set[str]]:
  modules = _modules()
  return {
      name: {target for target, _, _ in _imports(path, modules) if target in modules} - {name}
      for name, path in modules.items()
  }


def test_layers_import_only_downwards():
  broken = [
      f"{module} imports {target}" for module, targets in _graph().items() for target in targets
      if target.split(".")[0] in FORBIDDEN.get(module.split(".")[0], ())
  ]
  assert not broken, "\n".join(broken)


def test_no_import_circle_among_product_modules():
  graph = _graph()
  index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

  def visit(module):  # Tarjan's strongly connected components
    index[module] = low[module] = counter[0]
    counter[0] += 1
    stack.append(module)
    on_stack.add(module)
    for target in graph[module]:
      if target not in index:
        visit(target)
        low[module] = min(low[module], low[target])
      elif target in on_stack:
        low[module] = min(low[module], index[target])
    if low[module] == index[module]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == module:
          break
      if len(component) > 1:
        circles.append(sorted(component))

  for module in sorted(graph):
    if module not in index:
      visit(module)
  assert not circles, f"import circles: {circles}"


def test_every_function_level_import_says_why_it_is_lazy():
  """A function-level import hides an arrow; it is allowed for a start-up reason written
  beside it ("lazy: ..." on its line or in the comment block just above)."""
  unexplained = []
  modules = _modules()
  for path in modules.values():
    with open(path) as f:
      lines = f.read().splitlines()
    for node in ast.walk(ast.parse("\n".join(lines), path)):
      if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        continue
      for inner in ast.walk(node):
        if not isinstance(inner, (ast.Import, ast.ImportFrom)):
          continue
        row = inner.lineno - 1
        explained = False
        while row >= 0:
          text = lines[row].strip()
          if "lazy" in text.lower():
            explained = True
            break
          if not text.startswith(("#", "import ", "from ", "try:")):
            break
          row -= 1
        if not explained:
          unexplained.append(f"{os.path.relpath(path, ROOT)}:{inner.lineno}")
  assert not unexplained, "function-level imports without a reason: " + ", ".join(unexplained)


def test_the_graph_is_read_as_expected():
  graph = _graph()
  assert "eegmobile.storage" in graph["tfrecords.manifest"]
  assert "trainers.train_lib" in graph["trainers.cv"]  # a function-level import counts
  assert "eegmobile.staging.stage_lib" in graph["eegmobile.staging.cli"]
