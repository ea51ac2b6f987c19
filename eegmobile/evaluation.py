"""Evaluation: the paper's Table 1 metrics, the comparison table and the figures.

Metrics are scikit-learn's (accuracy, macro-F1, Cohen's kappa, per-class F1) on the
pooled per-epoch predictions of all folds, as the paper and its peers report them.
"""

import csv
import io
import json
from typing import Optional, Sequence

import numpy as np

from eegmobile import stages
from eegmobile import plots

# Published Sleep-EDF-20 rows (the first 20 SC subjects of Sleep-EDF Expanded, Fpz-Cz,
# 20-fold subject-wise CV), in percent (kappa as is). Checked against these sources:
#   EEGMobile: Ardeshir & Araghi 2023, "Sleep Stage Classification Using a Pre-trained Deep
#     Learning Model", arXiv:2309.07182, Table 1. Its abstract states ACC 86.97% and 56.4% in
#     N1 (checked); MF1, kappa and the other per-class F1 are from the project brief's copy
#     of Table 1 (the table itself was not re-read; its F1s average to its MF1, tested).
#   TinySleepNet and DeepSleepNet: the comparison table in the TinySleepNet repository
#     (github.com/akaraspt/tinysleepnet, img/compare_performance.png, the README's
#     "Performance Comparison"), rows "Our method" and "DeepSleepNet [5]" for
#     Sleep-EDF-v1, R&K, Fpz-Cz, 100 Hz, 30 s epochs, 20-fold CV (44,220 and 41,950 test
#     epochs). Every number below was read from that table. DeepSleepNet's ACC 82.0 and
#     MF1 76.9 are also in its paper's abstract (Supratak et al. 2017, IEEE TNSRE
#     25(11):1998-2008, arXiv:1703.04046).
PUBLISHED = (
    {
        "method": "EEGMobile (paper)",
        "source": "Ardeshir & Araghi 2023, arXiv:2309.07182, Table 1",
        "acc": 86.97,
        "mf1": 81.42,
        "kappa": 0.81,
        "f1": {
            "W": 95.4,
            "N1": 56.4,
            "N2": 88.86,
            "N3": 82.82,
            "REM": 83.64
        }
    },
    {
        "method": "TinySleepNet",
        "source": "Supratak & Guo 2020, EMBC; akaraspt/tinysleepnet README table, Sleep-EDF-v1",
        "acc": 85.4,
        "mf1": 80.5,
        "kappa": 0.80,
        "f1": {
            "W": 90.1,
            "N1": 51.4,
            "N2": 88.5,
            "N3": 88.3,
            "REM": 84.3
        }
    },
    {
        "method": "DeepSleepNet",
        "source": "Supratak et al. 2017, IEEE TNSRE; as in akaraspt/tinysleepnet README table",
        "acc": 82.0,
        "mf1": 76.9,
        "kappa": 0.76,
        "f1": {
            "W": 84.7,
            "N1": 46.6,
            "N2": 85.9,
            "N3": 84.8,
            "REM": 82.4
        }
    },
)


def metrics(labels: np.ndarray, predicted: np.ndarray) -> dict:
  """The paper's metrics of pooled per-epoch predictions.

  Args:
    labels: scored stage indices (0..4), one per epoch.
    predicted: predicted stage indices, same length.

  Returns:
    {"num_epochs", "acc" (%), "mf1" (%, mean of the five per-class F1), "kappa" (Cohen's),
     "f1" {stage: %}, "confusion" [scored][predicted] counts}. A stage absent from both
    arrays has F1 0 (scikit-learn's zero_division=0) and still counts in the macro mean.
  """
  # Lazy: scikit-learn is slow to import (BUILD_NOTES.md "Start-up"); staging needs none.
  from sklearn import metrics as sk  # pylint: disable=g-import-not-at-top
  labels, predicted = np.asarray(labels), np.asarray(predicted)
  classes = list(range(stages.NUM_STAGES))
  per_class = sk.f1_score(labels, predicted, labels=classes, average=None, zero_division=0)
  return {
      "num_epochs": int(len(labels)),
      "acc": 100.0 * float(sk.accuracy_score(labels, predicted)),
      "mf1": 100.0 * float(np.mean(per_class)),
      "kappa": float(sk.cohen_kappa_score(labels, predicted, labels=classes)),
      "f1": {
          s: 100.0 * float(v) for s, v in zip(stages.STAGES, per_class)
      },
      "confusion": sk.confusion_matrix(labels, predicted, labels=classes).tolist(),
  }


def pooled(confusions: Sequence[Sequence[Sequence[int]]]) -> dict:
  """`metrics` of several nights' epochs pooled, from their confusion matrices.

  Args:
    confusions: [scored][predicted] counts, one matrix per night (`metrics(...)["confusion"]`).

  Returns:
    `metrics` of every night's epochs together, as if their labels had been concatenated.
  """
  counts = np.sum(np.asarray(confusions, dtype=np.int64).reshape(-1, stages.NUM_STAGES,
                                                                 stages.NUM_STAGES),
                  axis=0)
  scored, predicted = np.nonzero(counts)
  repeats = counts[scored, predicted]
  return metrics(np.repeat(scored, repeats), np.repeat(predicted, repeats))


def consecutive_epochs(night: Sequence, epoch_index: Sequence[int]) -> np.ndarray:
  """bool [n]: epoch i directly follows epoch i - 1 of the same night (the next index).

  Args:
    night: a key per epoch naming its night (e.g. "SC00/1"), epochs of a night together.
    epoch_index: each epoch's index in its night, increasing within a night.
  """
  night, index = np.asarray(night), np.asarray(epoch_index, np.int64)
  out = np.zeros(len(index), bool)
  out[1:] = (night[1:] == night[:-1]) & (index[1:] == index[:-1] + 1)
  return out


def transition_errors(labels: np.ndarray, predicted: np.ndarray, consecutive: np.ndarray) -> dict:
  """How a method's stage changes compare with the expert's, over consecutive epochs.

  Args:
    labels: scored stages in time order (nights one after another).
    predicted: predicted stages, same order.
    consecutive: `consecutive_epochs` of those epochs (pairs across a gap or a night
      boundary are not compared).

  Returns:
    {"pairs": consecutive pairs compared, "hours": pairs x 30 s, "expert_transitions",
     "predicted_transitions", "false_transitions": predicted changes where the expert's
     stage stays, "missed_transitions": expert changes where the predicted stage stays,
     "false_per_hour", "missed_percent" (of the expert's transitions),
     "predicted_per_expert" (predicted / expert transitions: 1 is the expert's rate)}.
  """
  labels, predicted = np.asarray(labels), np.asarray(predicted)
  pairs = np.asarray(consecutive, bool)[1:]
  expert = (labels[1:] != labels[:-1]) & pairs
  model = (predicted[1:] != predicted[:-1]) & pairs
  hours = pairs.sum() * 30 / 3600
  false, missed = int((model & ~expert).sum()), int((expert & ~model).sum())
  return {
      "pairs": int(pairs.sum()),
      "hours": hours,
      "expert_transitions": int(expert.sum()),
      "predicted_transitions": int(model.sum()),
      "false_transitions": false,
      "missed_transitions": missed,
      "false_per_hour": false / hours if hours else 0.0,
      "missed_percent": 100.0 * missed / max(int(expert.sum()), 1),
      "predicted_per_expert": int(model.sum()) / max(int(expert.sum()), 1),
  }


def table_rows(ours: dict, label: str) -> list[dict]:
  """Table 1 rows: ours (named `label`) first, then the published ones.

  Args:
    ours: `metrics(...)` of the pooled predictions.
    label: our row's method name (it carries the PARTIAL / complete status).

  Returns:
    Flat dicts with the same keys: method, acc, mf1, kappa, f1_<stage>..., source.
  """

  def flat(row):
    return {
        "method": row["method"],
        "acc": round(row["acc"], 2),
        "mf1": round(row["mf1"], 2),
        "kappa": round(row["kappa"], 3),
        **{
            f"f1_{s}": round(row["f1"][s], 2) for s in stages.STAGES
        }, "source": row["source"]
    }

  return [flat({**ours, "method": label, "source": "this run"})] + [flat(r) for r in PUBLISHED]


def to_markdown(rows: Sequence[dict], title: str) -> str:
  """Rows (same keys) as a Markdown table under a `# title` heading."""
  header = list(rows[0])
  lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(r[k]) for k in header) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict]) -> str:
  """Rows (same keys) as CSV text with a header line."""
  buffer = io.StringIO()
  out = csv.DictWriter(buffer, fieldnames=list(rows[0]))
  out.writeheader()
  out.writerows(rows)
  return buffer.getvalue()


def to_json(rows: Sequence[dict], extra: dict) -> str:
  """{**extra, "rows": rows} as canonical JSON text."""
  return json.dumps({**extra, "rows": list(rows)}, indent=1, sort_keys=True) + "\n"


def plot_confusion(confusion: Sequence[Sequence[int]],
                   path: str,
                   title: Optional[str] = None) -> None:
  """Counts and row-normalised confusion matrices side by side, as a PNG.

  Args:
    confusion: [scored][predicted] counts (`metrics(...)["confusion"]`).
    path: the PNG to write.
    title: figure title (e.g. the run and its PARTIAL / complete status).
  """
  plt = plots.pyplot()
  counts = np.asarray(confusion, float)
  normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), constrained_layout=True)
  for ax, matrix, name, fmt in ((axes[0], counts, "counts", "{:.0f}"),
                                (axes[1], normalised, "row-normalised", "{:.2f}")):
    # Both panels are shaded by the row-normalised value: with raw counts N2 (~40% of
    # epochs) would wash out every other row.
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(matrix):
      ax.text(j,
              i,
              fmt.format(value),
              ha="center",
              va="center",
              color="white" if normalised[i, j] > 0.6 else "black")
    ax.set_xticks(range(stages.NUM_STAGES), stages.STAGES)
    ax.set_yticks(range(stages.NUM_STAGES), stages.STAGES)
    ax.set_xlabel("predicted stage")
    ax.set_ylabel("scored stage")
    ax.set_title(name)
  if title:
    fig.suptitle(title)
  plots.save(fig, path, dpi=110)


def mean_by_epoch(histories: dict, key: str) -> tuple[list[int], list[float]]:
  """(epochs, mean of `key` over the folds that reached each epoch), for the curves."""
  by_epoch = {}
  for history in histories.values():
    for h in history:
      by_epoch.setdefault(h["epoch"], []).append(h.get(key, np.nan))
  epochs = sorted(by_epoch)
  return epochs, [float(np.nanmean(by_epoch[e])) for e in epochs]


def plot_curves(histories: dict, path: str, title: Optional[str] = None) -> None:
  """Train (solid) vs validation (dashed) accuracy per epoch, a line pair per fold, as a PNG.

  With more than one fold the mean over folds is drawn on top, in black.

  Args:
    histories: {fold: [{"epoch", "phase", "accuracy", "val_accuracy", ...}, ...]}.
    path: the PNG to write.
    title: figure title (e.g. the run and its PARTIAL / complete status).
  """
  plt = plots.pyplot()
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top  # lazy: as pyplot
  fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
  few = len(histories) <= 6  # beyond that, per-fold legend entries would hide the plot
  for i, (fold, history) in enumerate(sorted(histories.items())):
    epochs = [h["epoch"] for h in history]
    color = plt.cm.tab20(i % 20)
    ax.plot(epochs, [h.get("accuracy", np.nan) for h in history],
            color=color,
            alpha=0.8,
            label=f"fold {fold} train" if few else None)
    ax.plot(epochs, [h.get("val_accuracy", np.nan) for h in history],
            "--",
            color=color,
            alpha=0.8,
            label=f"fold {fold} validation" if few else None)
  if len(histories) > 1:  # with 20 folds the mean is what one reads
    for key, style, name in (("accuracy", "-", "train"), ("val_accuracy", "--", "validation")):
      epochs, mean = mean_by_epoch(histories, key)
      ax.plot(epochs, mean, style, color="black", lw=2.2, label=f"mean {name}")
  switch = [h["epoch"] for hs in histories.values() for h in hs if h.get("phase") == 2]
  if switch:
    ax.axvline(min(switch) - 0.5, color="grey", lw=1)
    ax.text(min(switch) - 0.4, 0.02, "phase 2", color="grey", transform=ax.get_xaxis_transform())
  ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  ax.set_xlabel("epoch")
  ax.set_ylabel("accuracy")
  ax.set_title("train (solid) vs validation (dashed) accuracy per fold")
  if title:
    fig.suptitle(title)
  ax.legend(fontsize=8)
  plots.save(fig, path, dpi=110)
