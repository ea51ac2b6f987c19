"""What every command shares: quiet start-up, bug reports, and flags made from the configs.

The commands (`beam_pipelines.build`, `trainers.cv`, `trainers.report`, `trainers.export`,
`eegmobile.stage`) exit 2 with one `error: ...` line on bad input and report anything
unexpected as a bug: its traceback is appended to a log file (`report_bug`) and the
message names that file (`bug_message`). Importing this module imports neither
TensorFlow nor Beam.

Flags of config fields are made from the config dataclasses (`define_flags`): name, type,
default and help come from the field and the class's "Attributes:" docstring, so a
default is written once, in the config, and a command cannot restate it differently.
"""

import dataclasses
import datetime
import logging as std_logging
import os
import re
import shlex
import sys
import traceback
import typing
import warnings
from typing import Any, Mapping, Optional, Sequence

from absl import flags
from absl import logging

from eegmobile import storage

BUG_LOG = "errors.log"
NATIVE_LOG = "tensorflow.log"
NONE_WORD = "none"  # the flag value of an optional field's None


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
    return  # an unwritable directory is reported later, by what writes there
  sys.stderr.flush()
  terminal = os.dup(2)
  sys.stderr = os.fdopen(terminal, "w", buffering=1)
  os.dup2(target, 2)
  os.close(target)
  logging.get_absl_handler().python_handler.stream = sys.stderr


def report_bug(error: BaseException, log_path: str) -> str:
  """Appends `error`'s traceback, the time and the command line to the log at `log_path`.

  Falls back to ./errors.log when `log_path` cannot be written or is a store URL (the log
  stays on this machine, and os.makedirs would take "s3:" for a local directory).

  Returns:
    The log file's path.
  """
  text = "".join(traceback.format_exception(error))
  stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  entry = f"=== {stamp} {shlex.join([sys.executable] + sys.argv)}\n{text}\n"
  for path in (log_path, BUG_LOG):
    if storage.is_url(path):
      continue
    path = os.path.abspath(path)
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, "a") as f:
        f.write(entry)
      return path
    except OSError:
      continue
  sys.stderr.write(entry)
  return "(standard error)"


def bug_message(error: BaseException, log_path: str) -> str:
  """The message for an unexpected error, naming the log that holds its traceback."""
  return (f"error: unexpected {type(error).__name__}: {error}\n"
          f"This is a bug, not a problem with your input: please report it with the "
          f"traceback in {log_path}")


# --------------------------------------------------------------- flags from configs


def attribute_docs(cls: type) -> dict[str, str]:
  """{field: its description} from a class docstring's "Attributes:" section.

  A line "a, b, c: text" describes several fields at once.
  """
  doc = cls.__doc__ or ""
  section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
  docs, names = {}, []
  for line in section.splitlines():
    match = re.match(r"^\s{2,4}([\w, ]+):\s*(.*)$", line)
    if match and not line.startswith(" " * 6):
      names = [n.strip() for n in match.group(1).split(",")]
      for name in names:
        docs[name] = match.group(2).strip()
    elif line.strip() and names:
      for name in names:
        docs[name] += " " + line.strip()
  return docs


def _field_type(cls: type, name: str) -> tuple[type, bool]:
  """(the field's type, whether it may be None)."""
  hint = typing.get_type_hints(cls)[name]
  args = typing.get_args(hint)
  if type(None) in args:
    (inner,) = [a for a in args if a is not type(None)]
    return inner, True
  return hint, False


def define_flags(cls: type,
                 names: Sequence[str],
                 *,
                 rename: Optional[Mapping[str, str]] = None,
                 help_text: Optional[Mapping[str, str]] = None,
                 flag_values: flags.FlagValues = flags.FLAGS) -> dict[str, flags.FlagHolder]:
  """Defines one absl flag per config field, from the dataclass itself.

  Type and default come from the field, help from the class's "Attributes:" docstring
  (or `help_text`), choices from the field's `metadata["choices"]`. A field that may be
  None takes the value "none" for None (its flag is then a string flag, parsed by
  `flag_value`).

  Args:
    cls: a config dataclass.
    names: the fields that get flags.
    rename: {field: flag name} where the command's flag is named otherwise.
    help_text: {field: help} replacing the docstring's.
    flag_values: where to define them (tests pass their own FlagValues).

  Returns:
    {field name: flag holder}.
  """
  fields = {f.name: f for f in dataclasses.fields(cls)}
  docs = attribute_docs(cls)
  # The flags belong to the command that asked for them (its --help lists them); absl names
  # the main module by its file, as it does here.
  caller = sys._getframe(1).f_globals["__name__"]  # pylint: disable=protected-access
  module = {
      "module_name": sys.argv[0] if caller == "__main__" else caller,
      "flag_values": flag_values
  }
  holders = {}
  for name in names:
    field = fields[name]
    kind, optional = _field_type(cls, name)
    default = field.default
    flag = (rename or {}).get(name, name)
    text = (help_text or {}).get(name) or docs.get(name) or name
    choices = field.metadata.get("choices")
    if optional:
      text += f" ('{field.metadata.get('none_word', NONE_WORD)}': None)"
    if choices:
      holders[name] = flags.DEFINE_enum(flag, default, list(choices), text, **module)
    elif optional or kind is str:
      holders[name] = flags.DEFINE_string(flag, None if default is None else str(default), text,
                                          **module)
    elif kind is bool:
      holders[name] = flags.DEFINE_bool(flag, default, text, **module)
    elif kind is int:
      holders[name] = flags.DEFINE_integer(flag, default, text, **module)
    elif kind is float:
      holders[name] = flags.DEFINE_float(flag, default, text, **module)
    else:
      raise TypeError(f"{cls.__name__}.{name}: no flag type for {kind}")
  return holders


def flag_value(cls: type, name: str, holder: flags.FlagHolder) -> Any:
  """A flag's value as the config field's type ("none" -> None for optional fields).

  Raises:
    ValueError: a value that is not of the field's type (the message names the flag).
  """
  kind, optional = _field_type(cls, name)
  value = holder.value
  words = {
      NONE_WORD, {
          f.name: f for f in dataclasses.fields(cls)
      }[name].metadata.get("none_word", NONE_WORD)
  }
  if not optional or value is None:
    return value
  if str(value).lower() in words:
    return None
  if kind is str:
    return value
  try:
    return kind(value)
  except ValueError:
    raise ValueError(
        f"--{holder.name} must be {'an' if kind is int else 'a'} {kind.__name__} or '{NONE_WORD}', got "
        f"{value!r}") from None


def from_flags(cls: type, holders: Mapping[str, flags.FlagHolder], base: Any = None, **overrides):
  """A config: `base` (default: the class's defaults) with the flags' values and overrides."""
  values = {name: flag_value(cls, name, holder) for name, holder in holders.items()}
  return dataclasses.replace(base if base is not None else cls(), **{**values, **overrides})
