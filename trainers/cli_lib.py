"""What the trainers' entry points share: quiet start-up, bug reports, and build hints.

Entry points exit 2 with one `error: ...` line on bad input (a missing build, a bad fold,
a refused run) and 1 on anything unexpected: its traceback is appended to
`<workdir>/errors.log` (with the time and the command line) and the message names that
file as a bug to report. Importing this module imports neither TensorFlow nor Keras.
"""

import datetime
import json
import logging as std_logging
import os
import shlex
import sys
import traceback
import warnings

BUG_LOG = "errors.log"
NATIVE_LOG = "tensorflow.log"
BUILD_COMMAND = "python -m beam_pipelines.build --runner DirectRunner"


def quiet(verbose: bool, native_log: str = os.devnull) -> None:
  """Keeps TensorFlow's start-up logs, Python warnings and library loggers off the terminal.

  TensorFlow's C++ side (and XLA's) writes to file descriptor 2 whatever its log level, so
  that descriptor is pointed at `native_log`, while Python's sys.stderr (our messages and
  absl logs) keeps the terminal. Must run before TensorFlow is imported.

  Args:
    verbose: leave everything as it is (`--verbose`).
    native_log: where TensorFlow's C++ logs go (appended); its directory is created.
  """
  if verbose:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # info and warnings: not even logged
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # else a banner says they are on
  warnings.filterwarnings("ignore")
  for name in ("tensorflow", "keras", "h5py", "matplotlib"):
    std_logging.getLogger(name).setLevel(std_logging.ERROR)
  try:
    os.makedirs(os.path.dirname(native_log) or ".", exist_ok=True)
    target = os.open(native_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
  except OSError:
    return  # an unwritable workdir is reported later, by what writes there
  sys.stderr.flush()
  terminal = os.dup(2)
  sys.stderr = os.fdopen(terminal, "w", buffering=1)
  os.dup2(target, 2)
  os.close(target)
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.get_absl_handler().python_handler.stream = sys.stderr


def report_bug(workdir: str, error: BaseException) -> str:
  """Appends `error`'s traceback, the time and the command line to <workdir>/errors.log.

  Falls back to the current directory when the workdir cannot be written or is a store
  URL (s3://), which os.makedirs would take for a local path.

  Returns:
    The log file's path.
  """
  text = "".join(traceback.format_exception(error))
  stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  entry = f"=== {stamp} {shlex.join([sys.executable] + sys.argv)}\n{text}\n"
  for directory in (workdir, "."):
    if "://" in directory:  # a store URL (s3://): the log stays on this machine
      continue
    path = os.path.abspath(os.path.join(directory, BUG_LOG))
    try:
      os.makedirs(directory, exist_ok=True)
      with open(path, "a") as f:
        f.write(entry)
      return path
    except OSError:
      continue
  sys.stderr.write(entry)
  return "(standard error)"


def bug_message(error: BaseException, log_path: str) -> str:
  """The one-line message for an unexpected error, naming the log that holds its traceback."""
  return (f"error: unexpected {type(error).__name__}: {error}\n"
          f"This is a bug, not a problem with your input: please report it with the "
          f"traceback in {log_path}")


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
