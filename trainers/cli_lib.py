"""What the trainers' commands tell a user who has no build: the builds there are, and how
to make one. (Start-up, bug reports and flags of every command: `eegmobile.cli`.)
"""

import json
import os

BUILD_COMMAND = "python -m beam_pipelines.build --runner DirectRunner"


def find_builds(root: str = "out") -> list[dict]:
  """Builds under `root` (directories holding a manifest.json), with what they hold.

  Returns:
    [{"path", "subset", "demo", "subjects", "epochs"}], sorted by path; a manifest that
    cannot be read is listed with its error.
  """
  builds = []
  if not os.path.isdir(root):
    return builds
  for directory, _, files in sorted(os.walk(root)):
    if "manifest.json" not in files:
      continue
    entry = {"path": directory}
    try:
      with open(os.path.join(directory, "manifest.json")) as f:
        manifest = json.load(f)
      entry.update(subset=manifest["subset"],
                   demo=manifest["demo"],
                   subjects=len(manifest["subjects"]),
                   epochs=manifest["totals"]["num_examples"])
    except (OSError, ValueError, KeyError, TypeError) as e:
      entry["error"] = f"unreadable manifest ({e})"
    builds.append(entry)
  return builds


def no_build_help(build_dir: str, root: str = "out") -> str:
  """What to do when `build_dir` holds no build: the builds there are, and how to make one."""
  lines = [f"error: {build_dir} holds no build (no {os.path.join(build_dir, 'manifest.json')})."]
  builds = [b for b in find_builds(root) if "error" not in b]
  if builds:
    lines.append(f"Builds found under {root}/:")
    for b in builds:
      kind = "synthetic demo" if b["demo"] else "real"
      lines.append(f"  {b['path']}: {b['subset']} ({kind}), {b['subjects']} subjects, "
                   f"{b['epochs']} epochs")
    first = builds[0]
    name = os.path.basename(os.path.normpath(first["path"]))
    lines.append("Train a fold on one, e.g.:")
    lines.append(f"  python -m trainers.cv --build_dir {first['path']} --workdir runs/{name} "
                 f"--fold {min(3, first['subjects'] - 1)}")
  else:
    lines.append(f"No build found under {root}/.")
  lines.append("Build Sleep-EDF-20 into out/sleep-edf-20 (downloading it from PhysioNet):")
  lines.append(f"  {BUILD_COMMAND} --download --subset sleep-edf-20")
  lines.append("or, with its EDF files already on disk under DIR:")
  lines.append(f"  {BUILD_COMMAND} --data_dir DIR --subset sleep-edf-20")
  return "\n".join(lines)
