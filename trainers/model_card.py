"""The model card of a shipped model (<workdir>/final): flag-free.

`final` trains on every subject of the build (no test subject), so it has no test
metrics; the card carries the cross-validation metrics of the same run when the workdir
holds finished folds of it, and says "none" otherwise. model_card.json is written last,
atomically, after training finished: a killed run leaves no card.
"""

import dataclasses
import json
import os
from typing import Optional

from eegmobile import evaluation
from eegmobile import stages
from eegmobile import storage
from eegmobile.config import BuildConfig
from trainers import fold_results
from trainers import report_lib

CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"
MODEL_FILE = "checkpoint.keras"
CARD_FORMAT = "eegmobile-model-card"
CARD_VERSION = 1


def preprocessing(manifest: dict) -> dict:
  """The build's preprocessing parameters, from its manifest."""
  config = manifest["config"]
  samples = BuildConfig.from_dict(config).epochs.samples_per_epoch
  spectrogram = config["spectrogram"]
  epochs = config.get("epochs", {})
  return {
      "spectrogram": spectrogram,
      "epochs": epochs,
      "samples_per_epoch": samples,
      "image": manifest.get("image"),
      "sampling_rate_hz": spectrogram.get("fs"),
      "channel": config.get("channel", epochs.get("channel")),
  }


def cv_metrics(workdir: str, run_id: str) -> Optional[dict]:
  """Pooled metrics of the run's finished folds in `workdir`, or None when there are none."""
  done, _ = report_lib.finished_folds(workdir, run_id)
  if not done:
    return None
  labels, predicted, _, _ = report_lib.read_folds(workdir, done)
  pooled = evaluation.metrics(labels, predicted)
  return {
      "folds_done": done,
      "num_folds_done": len(done),
      "acc": pooled["acc"],
      "mf1": pooled["mf1"],
      "kappa": pooled["kappa"],
      "per_class_f1": pooled["f1"],
      "num_epochs": pooled["num_epochs"],
  }


def context_card(workdir: str, run: dict, record: Optional[dict]) -> Optional[dict]:
  """The card's "context" section: the fitted stage (trainers/context_lib.py's context.json
  of `final`) and, when the workdir holds finished folds of the run, their pooled
  per-method cross-validation metrics (`report_lib.context_report` rows)."""
  if record is None:
    return None
  done, _ = report_lib.finished_folds(workdir, run["run_id"])
  report = report_lib.context_report(workdir, done, run) if done else None
  return {
      **record, "directory": "context",
      "cross_validation": report["rows"] if report else "none"
  }


def build_card(config,
               manifest: dict,
               run: dict,
               subjects: list,
               *,
               context: Optional[dict] = None) -> dict:
  """The card's fields: model, build, preprocessing, classes, training, evaluation, and the
  context stage (`context`: the final directory's context.json record, or None)."""
  cv = cv_metrics(config.workdir, run["run_id"])
  card = {
      "format": CARD_FORMAT,
      "format_version": CARD_VERSION,
      "model_file": MODEL_FILE,
      "run_id": run["run_id"],
      "build": {
          **run["build"], "build_dir": config.build_dir
      },
      "preprocessing": preprocessing(manifest),
      "classes": list(stages.STAGES),
      "training": {
          **dataclasses.asdict(config), "training_subjects": list(subjects),
          "validation_subjects": []
      },
      "evaluation": {
          "test": "none: final trains on every subject of the build; no test subject",
          "cross_validation": cv if cv is not None else "none",
      },
  }
  section = context_card(config.workdir, run, context)
  if section is not None:
    card["context"] = section
  return card


def _markdown(card: dict) -> str:
  cv = card["evaluation"]["cross_validation"]
  if cv == "none":
    cv_text = ("None. `final` has no test subject. No finished cross-validation fold of "
               "this run was in the workdir when the card was written.")
  else:
    per_class = cv.get("per_class_f1")
    cv_text = (f"Cross-validation of the same run ({cv['num_folds_done']} fold(s) done, "
               f"pooled): ACC {cv['acc']:.2f}, macro-F1 {cv['mf1']:.2f}, kappa "
               f"{cv['kappa']:.3f}; per-class F1 {json.dumps(per_class)}. These estimate this "
               "model's accuracy on unseen subjects; `final` itself has no test metrics.")
  training = card["training"]
  build = card["build"]
  return f"""# EEGMobile sleep-staging model (run {card['run_id']})

## Intended use
Research: 5-stage sleep staging ({', '.join(card['classes'])}) of 30 s single-channel EEG
epochs. Not a medical device; not for diagnosis.

## Data
Build {build['build_dir']} (subset {build['subset']}, demo {build['demo']}, manifest sha256
{build['manifest_sha256'][:12]}); trained on all {len(training['training_subjects'])} subjects.

## Preprocessing
{json.dumps(card['preprocessing'], sort_keys=True)}

## Training
MobileNetV3Large, weights {training['weights']}, {training['phase1_epochs']} epochs training
everything then {training['phase2_epochs']} training only the top of the backbone and the head,
batch {training['batch_size']}, Adam {training['learning_rate']}, seed {training['seed']}.
Model file: {card['model_file']}.

## Evaluation
{cv_text}

{_context_markdown(card.get("context"))}## Limitations
Trained on Sleep-EDF's EEG Fpz-Cz channel (healthy adults). Its accuracy on other montages
(e.g. a headband's AF7-TP9, staged with `--channel AF7-TP9`), devices, ages or sleep
disorders is not established; staging another channel says so in its outputs. Not a
medical device.
"""


def _context_markdown(context: Optional[dict]) -> str:
  if not context:
    return ""
  lines = [
      "## Context across epochs", "",
      f"Staging applies the {context['stage']} after the per-epoch model (files in "
      f"{context['directory']}/; causal variants with lag {context['lag']})."
  ]
  if context["cross_validation"] != "none":
    lines.append("Cross-validation of the same run, pooled:")
    lines += [
        f"- {row['method']}: ACC {row['acc']}, macro-F1 {row['mf1']}, kappa {row['kappa']}, "
        f"N1 F1 {row['f1_N1']}" for row in context["cross_validation"]
    ]
  return "\n".join(lines) + "\n\n"


def write_card(directory: str, card: dict) -> None:
  """Writes MODEL_CARD.md, then model_card.json (each atomically; the JSON last)."""
  storage.write_text(os.path.join(directory, CARD_MD), _markdown(card))
  storage.write_text(os.path.join(directory, CARD_JSON), json.dumps(card, indent=1, sort_keys=True))


def read_card(directory: str) -> Optional[dict]:
  """The card in `directory`, or None."""
  return fold_results.read_json(os.path.join(directory, CARD_JSON))
