"""Build layout: shard names and the manifest (JSON) that sits beside the shards.

A build directory holds `manifest.json` and, per subject, the shards
`<subset>-<subject>.tfrecord-<i>-of-<n>` (one shard per night, nights in order), so a
fold is a set of files. The manifest records everything needed to reproduce and to read
the build; it holds no timestamps or absolute paths, so the same inputs give the same bytes.

Manifest fields (format_version 1):
  format, format_version, library_version, dataset, subset, demo (bool), complete (bool),
  config (BuildConfig.to_dict()), image {height, width, dtype, encoding, version (of the
  image arithmetic, `config.IMAGE_VERSION`; absent in builds of version 1)},
  compression ("" or "GZIP"), stages [names by label index],
  subjects {subject_id: {shards: [...], num_examples, class_counts {stage: n}}},
  recordings [{record, subject, night, shard, num_examples, class_counts, dropped {reason: n},
               psg {file, sha256}, hypnogram {file, sha256}, channel {label, unit, fs},
               duration_s}],
  totals {num_examples, class_counts, dropped},
  failures [{record, file, error}].
"""

import json
from typing import Iterable, Sequence

import eegmobile
from eegmobile import stages
from eegmobile import storage
from eegmobile import config as config_lib
from eegmobile.config import BuildConfig

FORMAT = "eegmobile-sleep-edf-tfrecords"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"


def shard_file_name(subset: str, subject_id: str, index: int, count: int) -> str:
  """Deterministic shard name, e.g. sleep-edf-20-SC00.tfrecord-00000-of-00002."""
  return f"{subset}-{subject_id}.tfrecord-{index:05d}-of-{count:05d}"


def dumps(manifest: dict) -> str:
  """Canonical JSON text of a manifest (sorted keys, so equal manifests are equal bytes)."""
  return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def loads(text: str, path: str, *, allow_incomplete: bool = False) -> dict:
  """Parses and checks a manifest's text (`path` names it in errors).

  Raises:
    ValueError: not a manifest of this format/version, or an incomplete build.
  """
  try:
    manifest = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from e
  if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
    raise ValueError(f"{path}: not an {FORMAT} v{FORMAT_VERSION} manifest "
                     f"(format={manifest.get('format')!r}, "
                     f"version={manifest.get('format_version')!r})")
  if not manifest.get("complete") and not allow_incomplete:
    failed = ", ".join(f["record"] or f["file"] for f in manifest.get("failures", []))
    raise ValueError(f"{path}: incomplete build, {len(manifest.get('failures', []))} "
                     f"recording(s) failed ({failed}); pass allow_incomplete=True to use it")
  return manifest


def load_manifest(build_dir: str, *, allow_incomplete: bool = False) -> dict:
  """Reads and checks a build's manifest (local path or object-store URL).

  A build is complete only once its manifest is written (it is written last), so a
  directory or prefix without one is never taken for a build.

  Args:
    build_dir: the build's output directory.
    allow_incomplete: accept a build whose manifest says some recordings failed.

  Raises:
    FileNotFoundError: no manifest in build_dir.
    ValueError: not a manifest of this format/version, or an incomplete build.
  """
  path = storage.join(build_dir, MANIFEST_FILE)
  try:
    text = storage.read_text(path)
  except FileNotFoundError:
    raise FileNotFoundError(f"{path}: no manifest; {build_dir} is not a build directory, or "
                            "its build did not finish (the manifest is written last)") from None
  return loads(text, path, allow_incomplete=allow_incomplete)


def image_version(manifest: dict) -> int:
  """The image version a build holds (`config.IMAGE_VERSION`; 1 when not recorded)."""
  return int(manifest["image"].get("version", 1))


def subjects(manifest: dict) -> list[str]:
  """The build's subject ids, sorted."""
  return sorted(manifest["subjects"])


def shard_paths(build_dir: str, manifest: dict, subject_ids: Iterable[str]) -> list[str]:
  """Paths of the shards holding the given subjects, in subject then night order.

  Raises:
    KeyError: a subject that is not in the build.
  """
  paths = []
  for subject_id in subject_ids:
    if subject_id not in manifest["subjects"]:
      raise KeyError(f"subject {subject_id!r} is not in this build "
                     f"(it has {', '.join(subjects(manifest))})")
    paths.extend(storage.join(build_dir, s) for s in manifest["subjects"][subject_id]["shards"])
  return paths


def num_examples(manifest: dict, subject_ids: Sequence[str]) -> int:
  """Number of examples the given subjects hold."""
  return sum(manifest["subjects"][s]["num_examples"] for s in subject_ids)


def make_manifest(config: BuildConfig, summaries: Sequence[dict], failures: Sequence[dict], *,
                  demo: bool) -> dict:
  """The manifest of a build (pure): shard names, per-subject and total counts, failures.

  Args:
    config: the build's parameters.
    summaries: one manifest entry per built night (from `nights.build_night`).
    failures: one entry per recording that failed.
    demo: whether the recordings were the synthetic demo set.
  """
  recordings = sorted((dict(s) for s in summaries), key=lambda s: (s["subject"], s["night"]))
  subjects: dict[str, dict] = {}
  for night in recordings:
    subjects.setdefault(night["subject"], {"records": []})["records"].append(night)
  for subject_id, entry in subjects.items():
    nights_of_subject = entry.pop("records")
    for i, night in enumerate(nights_of_subject):
      night["shard"] = shard_file_name(config.subset, subject_id, i, len(nights_of_subject))
    entry["shards"] = [n["shard"] for n in nights_of_subject]
    entry["num_examples"] = sum(n["num_examples"] for n in nights_of_subject)
    entry["class_counts"] = _sum_counts(n["class_counts"] for n in nights_of_subject)
  return {
      "format": FORMAT,
      "format_version": FORMAT_VERSION,
      "library_version": eegmobile.__version__,
      "dataset": "sleep-edf",
      "subset": config.subset,
      "demo": demo,
      "complete": not failures,
      "config": config.to_dict(),
      "image": {
          "height": config.spectrogram.image_height,
          "width": config.spectrogram.image_width,
          "dtype": "uint8",
          "encoding": "colour-map index, row 0 = highest frequency",
          "version": config_lib.IMAGE_VERSION,
      },
      "compression": config.compression,
      "stages": list(stages.STAGES),
      "subjects": dict(sorted(subjects.items())),
      "recordings": recordings,
      "totals": {
          "num_examples": sum(r["num_examples"] for r in recordings),
          "class_counts": _sum_counts(r["class_counts"] for r in recordings),
          "dropped": _sum_counts(r["dropped"] for r in recordings)
      },
      "failures": sorted(failures, key=lambda f: (f["record"] or "", f["file"])),
  }


def _sum_counts(counts) -> dict:
  total: dict[str, int] = {}
  for c in counts:
    for key, value in c.items():
      total[key] = total.get(key, 0) + value
  return dict(sorted(total.items()))
