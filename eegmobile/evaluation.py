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

# Published Sleep-EDF-20 (Fpz-Cz, 20-fold subject-wise CV) rows, in percent (kappa as is).
PUBLISHED = (
    {
        "method": "EEGMobile (paper)",
        "source": "Ardeshir & Araghi 2023, Table 1",
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
        "source": "Supratak & Guo 2020, EMBC, Table II",
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
        "source": "Supratak et al. 2017, IEEE TNSRE, Table IV",
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
  """ACC, macro-F1 (percent), Cohen's kappa, per-class F1 (percent), confusion matrix."""
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


def table_rows(ours: dict, label: str) -> list[dict]:
  """Our row first, then the published ones; flat dicts with the same columns."""

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
  header = list(rows[0])
  lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(r[k]) for k in header) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict]) -> str:
  buffer = io.StringIO()
  out = csv.DictWriter(buffer, fieldnames=list(rows[0]))
  out.writeheader()
  out.writerows(rows)
  return buffer.getvalue()


def to_json(rows: Sequence[dict], extra: dict) -> str:
  return json.dumps({**extra, "rows": list(rows)}, indent=1, sort_keys=True) + "\n"


def plot_confusion(confusion: Sequence[Sequence[int]],
                   path: str,
                   title: Optional[str] = None) -> None:
  """Counts and row-normalised confusion matrices side by side, as a PNG."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  counts = np.asarray(confusion, float)
  normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), constrained_layout=True)
  for ax, matrix, name, fmt in ((axes[0], counts, "counts", "{:.0f}"),
                                (axes[1], normalised, "row-normalised", "{:.2f}")):
    ax.imshow(matrix if name != "counts" else normalised, cmap="Blues", vmin=0, vmax=1)
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
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_curves(histories: dict, path: str) -> None:
  """Train vs validation accuracy per epoch, one line pair per fold, as a PNG."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
  for i, (fold, history) in enumerate(sorted(histories.items())):
    epochs = [h["epoch"] for h in history]
    color = plt.cm.tab20(i % 20)
    ax.plot(epochs, [h.get("accuracy", np.nan) for h in history],
            color=color,
            alpha=0.8,
            label=f"fold {fold} train")
    ax.plot(epochs, [h.get("val_accuracy", np.nan) for h in history],
            "--",
            color=color,
            alpha=0.8,
            label=f"fold {fold} validation")
  switch = [h["epoch"] for hs in histories.values() for h in hs if h.get("phase") == 2]
  if switch:
    ax.axvline(min(switch) - 0.5, color="grey", lw=1)
    ax.text(min(switch) - 0.4, 0.02, "phase 2", color="grey", transform=ax.get_xaxis_transform())
  ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  ax.set_xlabel("epoch")
  ax.set_ylabel("accuracy")
  ax.set_title("train (solid) vs validation (dashed) accuracy per fold")
  if len(histories) <= 6:
    ax.legend(fontsize=8)
  fig.savefig(path, dpi=110)
  plt.close(fig)
