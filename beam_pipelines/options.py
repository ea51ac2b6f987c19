"""Which command-line arguments are Beam pipeline options: the build's flag check.

Flag-free, so tests and other entry points import it without defining the build's flags
(two entry modules in one process collide on shared flag names such as --image_size).
"""

import difflib
from typing import Sequence


def beam_option_parser():
  """An argparse parser knowing every Beam pipeline option (as Beam itself builds it)."""
  # Lazy: the build imports this module before it can route Beam's import-time warnings to
  # its log (beam_pipelines/build.py, _parse_flags).
  from apache_beam.options import pipeline_options as po  # pylint: disable=g-import-not-at-top
  try:  # lazy: the DaskRunner's options (the dask extra) exist once its module is imported
    from apache_beam.runners.dask import dask_runner  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    pass

  def subclasses(cls):
    for sub in cls.__subclasses__():
      yield sub
      yield from subclasses(sub)

  parser = po._BeamArgumentParser(allow_abbrev=False)  # pylint: disable=protected-access
  for cls in {str(c): c for c in subclasses(po.PipelineOptions)}.values():
    cls._add_argparse_args(parser)  # pylint: disable=protected-access
  return parser


def unknown_arguments(args: Sequence[str]) -> list[str]:
  """The arguments that are not Beam pipeline options (our own flags are parsed already)."""
  return beam_option_parser().parse_known_args(list(args))[1]


def _suggestion(argument: str, known: list[str]) -> str:
  name = argument.split("=", 1)[0]
  close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
  return f" (did you mean {close[0]}?)" if close else ""


def describe_unknown(unknown: Sequence[str], own_flags: Sequence[str]) -> str:
  """One line naming each unknown argument and the closest known flag or Beam option.

  Args:
    unknown: what `unknown_arguments` returned.
    own_flags: the command's own flag names, without dashes.

  Returns:
    e.g. "--subest (did you mean --subset?); sleep-edf-78 (not a flag)".
  """
  parser = beam_option_parser()
  known = [f"--{name}" for name in own_flags] + [
      option for action in parser._actions for option in action.option_strings  # pylint: disable=protected-access
  ]
  return "; ".join(
      f"{a}{_suggestion(a, known)}" if a.startswith("-") else f"{a} (not a flag)" for a in unknown)
