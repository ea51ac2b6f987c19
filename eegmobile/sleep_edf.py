"""Sleep-EDF file naming: find PSG/hypnogram pairs and select a subset by name.

Sleep-EDF Expanded names its files `SC4ssNE0-PSG.edf` / `SC4ssNEx-Hypnogram.edf`
(sleep cassette, subject ss, night N, scorer letter x) and `ST7ssNJ0-PSG.edf` /
`ST7ssNJx-Hypnogram.edf` (sleep telemetry). A PSG and its hypnogram share their first
seven characters.
"""

import dataclasses
import os
import re
from typing import Iterable, Optional

from eegmobile import errors

PHYSIONET_URL = "https://physionet.org/files/sleep-edfx/1.0.0/"

# subset name -> (study, predicate on subject number). Sleep-EDF-20 is the 2013 release
# (subjects 0-19 of the cassette study, 39 nights: SC4132 was never recorded).
SUBSETS = {
    "sleep-edf-20": ("SC", lambda subject: subject <= 19),
    "sleep-edf-78": ("SC", lambda subject: True),
    "sleep-edf-st": ("ST", lambda subject: True),
    "all": (None, lambda subject: True),
}

_NAME = re.compile(r"^(?P<study>SC|ST)(?P<digit>\d)(?P<subject>\d\d)(?P<night>\d)"
                   r"(?P<letter>[A-Z])(?P<scorer>[A-Z0-9])-(?P<kind>PSG|Hypnogram)\.edf$")


@dataclasses.dataclass(frozen=True)
class FileName:
  """What a Sleep-EDF file name says."""
  study: str  # "SC" or "ST"
  subject: int
  night: int
  kind: str  # "PSG" or "Hypnogram"
  key: str  # first seven characters, shared by a PSG and its hypnogram

  @property
  def record(self) -> str:
    """The recording's name as PhysioNet lists it (the PSG's stem, e.g. SC4001E0)."""
    return self.key + "0"

  @property
  def subject_id(self) -> str:
    """Subject identifier unique across studies, e.g. 'SC00' or 'ST01'."""
    return f"{self.study}{self.subject:02d}"


@dataclasses.dataclass(frozen=True)
class Recording:
  """One night: a PSG file and its hypnogram."""
  record: str
  subject_id: str
  subject: int
  night: int
  study: str
  psg_path: str
  hypnogram_path: str


def parse_name(filename: str) -> Optional[FileName]:
  """Parses a Sleep-EDF file name (a path is fine). Returns None if it is not one."""
  m = _NAME.match(os.path.basename(filename))
  if not m:
    return None
  return FileName(study=m["study"],
                  subject=int(m["subject"]),
                  night=int(m["night"]),
                  kind=m["kind"],
                  key=os.path.basename(filename)[:7])


def in_subset(name: FileName, subset: str) -> bool:
  """Whether a parsed file belongs to the named subset.

  Raises:
    ValueError: unknown subset name.
  """
  if subset not in SUBSETS:
    raise ValueError(f"unknown subset {subset!r}; choose one of {sorted(SUBSETS)}")
  study, wanted = SUBSETS[subset]
  return (study is None or name.study == study) and wanted(name.subject)


def pair_files(paths: Iterable[str],
               subset: str) -> tuple[list[Recording], list[errors.PairingError]]:
  """Pairs PSG and hypnogram files of a subset.

  Args:
    paths: candidate file paths; names that are not Sleep-EDF names are ignored.
    subset: a key of SUBSETS.

  Returns:
    (recordings sorted by subject and night, one PairingError per unpaired or
    ambiguous file).
  """
  by_key: dict[str, dict[str, list[str]]] = {}
  for path in paths:
    name = parse_name(path)
    if name is None or not in_subset(name, subset):
      continue
    by_key.setdefault(name.key, {"PSG": [], "Hypnogram": []})[name.kind].append(path)
  recordings, problems = [], []
  for key in sorted(by_key):
    psgs, hypnograms = sorted(by_key[key]["PSG"]), sorted(by_key[key]["Hypnogram"])
    if not psgs:
      problems.append(
          errors.PairingError(
              hypnograms[0], "hypnogram without a PSG "
              f"(expected a file named {key}0-PSG.edf beside it)"))
      continue
    if not hypnograms:
      problems.append(
          errors.PairingError(
              psgs[0], "PSG without a hypnogram "
              f"(expected a file named {key}?-Hypnogram.edf)"))
      continue
    if len(psgs) > 1 or len(hypnograms) > 1:
      problems.append(
          errors.PairingError(psgs[0], "ambiguous pairing: " + ", ".join(psgs + hypnograms)))
      continue
    name = parse_name(psgs[0])
    recordings.append(
        Recording(record=name.record,
                  subject_id=name.subject_id,
                  subject=name.subject,
                  night=name.night,
                  study=name.study,
                  psg_path=psgs[0],
                  hypnogram_path=hypnograms[0]))
  return recordings, problems


def find_recordings(data_dir: str,
                    subset: str) -> tuple[list[Recording], list[errors.PairingError]]:
  """Finds the recordings of a subset anywhere below data_dir (see `pair_files`).

  Raises:
    FileNotFoundError: data_dir does not exist.
  """
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f"{data_dir}: data directory does not exist")
  paths = [os.path.join(root, f) for root, _, files in os.walk(data_dir) for f in files]
  return pair_files(paths, subset)
