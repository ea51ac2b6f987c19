r"""Context across epochs (issue 17): what each context stage gains, and what it costs.

Three parts; each prints its figures.

1. The table: a trainers.cv --context head workdir's pooled test epochs, per method (the
   per-epoch model, the HMM smoother and the sequence head, finished-night and causal):
   ACC, macro-F1, kappa, N1 F1, transitions, plus the smoother at other causal lags
   (recomputed from each fold's cached probabilities; nothing is retrained), and each
   fold's context training seconds (features pass, smoother, both heads).

     PYTHONPATH=. python bench/context.py --workdir /tmp/ctx/cv-hard64 --lags 0,1,2,5

   The measured run (BUILD_NOTES.md, "Context across epochs"): the harder synthetic
   variant of the 39 real Sleep-EDF-20 hypnograms (20 subjects, 42,307 epochs),

     python -m beam_pipelines.make_synthetic --hypnograms ../shared/sleep-edf/sleep-cassette \
         --output_dir /tmp/ctx/sedf20-hard --difficulty 0.8
     python -m beam_pipelines.build --runner DirectRunner --data_dir /tmp/ctx/sedf20-hard \
         --output_dir /tmp/ctx/build-hard64 --image_size 64
     python -m trainers.cv --build_dir /tmp/ctx/build-hard64 --workdir /tmp/ctx/cv-hard64 \
         --weights none --batch_size 32 --phase1_epochs 3 --phase2_epochs 0 \
         --steps_per_epoch 150 --context head --fold all,final

2. A context stage for an existing model (--fit_model): fits the smoother and the heads
   on every subject of a build with that model's features, as `--fold final` does, and
   exports the model with it (e.g. the 224x224 demo model of bench/demo_model.py):

     PYTHONPATH=. python bench/context.py --fit_model /tmp/demo_model/run/fold_00/checkpoint.keras \
         --build_dir out/demo --preprocessing /tmp/demo_model/export --export_to /tmp/ctx/demo224

3. Staging cost (--stage_export): one night (bench/stage_night.py's 22 h night) staged
   in-process with the export, per context setting (none; smoother and head, finished
   night and causal), best of --repeats, after a warm-up; the runtime is LiteRT in
   float32 (the head's features file is float32), the same for every row.

     PYTHONPATH=. python bench/context.py --stage_export /tmp/ctx/demo224 \
         --night /tmp/stage_bench/night22h.edf --repeats 3
"""

import json
import os
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

_WORKDIR = flags.DEFINE_string("workdir", None, "A trainers.cv --context head workdir.")
_LAGS = flags.DEFINE_list("lags", ["0", "1", "2", "5"], "Causal lags of the smoother to add.")
_FIT_MODEL = flags.DEFINE_string("fit_model", None, "A .keras model to fit a context stage for.")
_BUILD_DIR = flags.DEFINE_string("build_dir", None, "The build --fit_model's stage learns from.")
_PREPROCESSING = flags.DEFINE_string("preprocessing", None,
                                     "Where --fit_model's preprocessing is recorded.")
_EXPORT_TO = flags.DEFINE_string("export_to", None, "Where --fit_model's export goes.")
_HEAD_STEPS = flags.DEFINE_integer("head_steps", 1500, "Adam steps per head (--fit_model).")
_STAGE_EXPORT = flags.DEFINE_string("stage_export", None, "An export with a context head.")
_NIGHT = flags.DEFINE_string("night", "/tmp/stage_bench/night22h.edf", "The night to stage.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per setting (the best is printed).")
_THREADS = flags.DEFINE_integer("threads", None, "Runtime threads (default: every core).")


def _table(workdir: str, lags: list[int]) -> None:
  from eegmobile import evaluation  # pylint: disable=g-import-not-at-top
  from trainers import context_lib  # pylint: disable=g-import-not-at-top
  from trainers import report_lib  # pylint: disable=g-import-not-at-top
  from trainers import run_lib  # pylint: disable=g-import-not-at-top
  run = run_lib.load_run(workdir)
  done, _ = report_lib.finished_folds(workdir, run["run_id"])
  columns = report_lib.read_context(workdir, done)
  if not columns:
    raise SystemExit(f"{workdir}: no context predictions (a trainers.cv --context run?)")
  rows = report_lib.context_rows(columns, run["context"]["context_lag"])
  # The smoother at other lags, from each fold's cached per-epoch probabilities.
  predicted = {lag: [] for lag in lags}
  nights_all, index_all, truth = [], [], []
  seconds = []
  for k in done:
    directory = os.path.join(workdir, f"fold_{k:02d}")
    split = json.load(open(os.path.join(directory, "split.json")))
    record = context_lib.read_record(directory)
    seconds.append(record["seconds"])
    with np.load(os.path.join(directory, "context", context_lib.FEATURES_FILE)) as cached:
      table = {
          name: cached[name]
          for name in ("subject", "night", "epoch_index", "label", "probabilities")
      }
    smoother = context_lib.fit_smoother(context_lib.nights_of(table, split["train"]))
    for night in context_lib.nights_of(table, split["test"]):
      nights_all += [f"{night['subject']}/{night['night']}"] * len(night["label"])
      index_all.append(night["epoch_index"])
      truth.append(night["label"])
      for lag in lags:
        p = smoother.causal_posteriors(night["probabilities"], lag, night["epoch_index"])
        predicted[lag].append(np.argmax(p, axis=1))
  truth = np.concatenate(truth)
  consecutive = evaluation.consecutive_epochs(np.array(nights_all), np.concatenate(index_all))
  for lag in lags:
    guess = np.concatenate(predicted[lag])
    m = evaluation.metrics(truth, guess)
    t = evaluation.transition_errors(truth, guess, consecutive)
    rows.insert(
        -1, {
            "method": f"HMM smoother (causal, lag {lag}; refitted here)",
            "acc": round(m["acc"], 2),
            "mf1": round(m["mf1"], 2),
            "kappa": round(m["kappa"], 3),
            "f1_N1": round(m["f1"]["N1"], 2),
            "transitions_per_hour": round(t["predicted_transitions"] / t["hours"], 2),
            "false_transitions_per_hour": round(t["false_per_hour"], 2),
            "missed_transitions_percent": round(t["missed_percent"], 1),
        })
  print(f"{run_lib.describe(run)}; {len(done)} of {run['folds']['num_folds']} folds, "
        f"{len(columns['label'])} test epochs\n")
  keys = ("acc", "mf1", "kappa", "f1_N1", "transitions_per_hour", "false_transitions_per_hour",
          "missed_transitions_percent")
  print("| method | ACC | MF1 | kappa | N1 F1 | transitions/h | false/h | missed % |")
  print("|---|---|---|---|---|---|---|---|")
  for row in rows:
    print("| " + " | ".join([row["method"]] + [str(row[k]) for k in keys]) + " |")
  print("\ncontext training seconds per fold (median, max over folds):")
  for part in ("features", "smoother", "heads"):
    values = [s[part] for s in seconds if part in s]
    if values:
      print(f"  {part:9s} {np.median(values):8.2f} {np.max(values):8.2f}")


def _fit_model(model_path: str) -> None:
  import keras  # pylint: disable=g-import-not-at-top
  from eegmobile import model as model_lib  # pylint: disable=g-import-not-at-top,unused-import
  from tfrecords import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  from trainers import context_lib  # pylint: disable=g-import-not-at-top
  from trainers import export_lib  # pylint: disable=g-import-not-at-top
  work = tempfile.mkdtemp(prefix="context_model_")
  copy = os.path.join(work, "checkpoint.keras")
  with open(model_path, "rb") as source, open(copy, "wb") as target:
    target.write(source.read())
  model = keras.saving.load_model(copy)
  subjects = manifest_lib.subjects(manifest_lib.load_manifest(_BUILD_DIR.value))
  config = context_lib.ContextConfig(stage="head", head_steps=_HEAD_STEPS.value)
  start = time.perf_counter()
  table = context_lib.compute_features(model, _BUILD_DIR.value, subjects, color="viridis")
  features_s = time.perf_counter() - start
  fitted = context_lib.fit(config, table, subjects)
  fitted["seconds"]["features"] = features_s
  record = context_lib.save(context_lib.context_dir(work), config, fitted)
  print(f"fitted on {len(subjects)} subjects ({len(table['label'])} epochs): "
        f"{json.dumps(record['seconds'])}")
  preprocessing = export_lib.load_preprocessing(_PREPROCESSING.value)
  export_lib.export(copy, _EXPORT_TO.value, preprocessing=preprocessing, formats=("float16",))
  print(f"exported to {_EXPORT_TO.value}")


def _stage(export_dir: str, night: str) -> None:
  from eegmobile import context  # pylint: disable=g-import-not-at-top
  from eegmobile.staging import context_stage  # pylint: disable=g-import-not-at-top
  from eegmobile.staging import runtimes  # pylint: disable=g-import-not-at-top
  from eegmobile.staging import stage_lib  # pylint: disable=g-import-not-at-top
  config = stage_lib.StageConfig(runtime="litert", precision="f32", threads=_THREADS.value)
  plain = runtimes.load(export_dir, runtime="litert", precision="f32", threads=_THREADS.value)
  with_features = runtimes.load(export_dir,
                                runtime="litert",
                                precision="f32",
                                threads=_THREADS.value,
                                features=True)
  lag = context_stage.recorded(export_dir)["lag"]
  settings = [("none", plain, None), ("smoother, finished night", plain, ("smoother", None)),
              (f"smoother, causal lag {lag}", plain, ("smoother", lag)),
              ("none, features file", with_features, None),
              ("head, finished night", with_features, ("head", None)),
              (f"head, causal lag {lag}", with_features, ("head", lag))]
  out = tempfile.mkdtemp(prefix="context_stage_")
  print(f"{night}, {export_dir}: litert f32, {plain.threads} threads")
  print("| context | model file | night s (best of {}) | context stage alone s |".format(
      _REPEATS.value))
  print("|---|---|---|---|")
  for name, model, asked in settings:
    stage = (context_stage.load(
        export_dir, asked[0], asked[1], runtime="litert", threads=plain.threads) if asked else None)
    stage_lib.stage_night(night, model, out, config, context=stage)  # warm-up
    times = []
    for _ in range(_REPEATS.value):
      start = time.perf_counter()
      stage_lib.stage_night(night, model, out, config, context=stage)
      times.append(time.perf_counter() - start)
    alone = ""
    if stage is not None:  # the context stage on the night's probabilities and features
      n = stage_lib.read_night(night, config).num_epochs
      rng = np.random.default_rng(0)
      p = rng.dirichlet(np.ones(5), n).astype(np.float32)
      f = rng.random((n, with_features.feature_size), np.float32)
      start = time.perf_counter()
      context.apply(stage, p, f if stage.needs_features else None)
      alone = f"{time.perf_counter() - start:.3f}"
    print(f"| {name} | {os.path.basename(model.path)} | {min(times):.2f} | {alone} |")


def main(argv):
  del argv
  if _WORKDIR.value:
    _table(_WORKDIR.value, [int(lag) for lag in _LAGS.value])
  if _FIT_MODEL.value:
    _fit_model(_FIT_MODEL.value)
  if _STAGE_EXPORT.value:
    _stage(_STAGE_EXPORT.value, _NIGHT.value)


if __name__ == "__main__":
  app.run(main)
