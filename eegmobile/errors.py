"""Errors raised for bad input. Each names the file it is about and the problem."""

from typing import Optional


class RecordingError(ValueError):
  """A recording (PSG or hypnogram file) cannot be used.

  Attributes:
    path: the offending file (or None when the problem is not tied to one file).
    problem: a short description of what is wrong, without the path.
  """

  def __init__(self, path: Optional[str], problem: str):
    self.path = None if path is None else str(path)
    self.problem = problem
    super().__init__(f"{self.path}: {problem}" if self.path else problem)


class EdfFormatError(RecordingError):
  """The file is not a readable EDF/EDF+ file (truncated, corrupt, malformed header)."""


class ChannelError(RecordingError):
  """The requested channel is missing, has an unknown unit, or its signal is unusable."""


class HypnogramError(RecordingError):
  """The hypnogram is unusable: unknown labels, or annotations that do not fit the PSG."""


class PairingError(RecordingError):
  """A PSG without its hypnogram, or a hypnogram without its PSG."""


class OutputDirError(RecordingError):
  """The output directory holds a different build."""
