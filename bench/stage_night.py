r"""Time `python -m eegmobile.stage` on a synthetic 22-hour night, per runtime, against YASA.

  PYTHONPATH=. python bench/stage_night.py --workdir /tmp/stage_bench \
      [--export_dir EXPORT] [--yasa_python /tmp/yasa/bin/python] [--repeats 3] [--force_avx2]

Writes (once, reused) a synthetic night in the Sleep-EDF cassette layout (2,650 epochs,
22 h 5 min; eegmobile/demo/synthetic.py) and, unless --export_dir names an export (e.g.
bench/demo_model.py's short-trained one), a random-weights 224x224 model exported with
trainers.export_lib, then runs the command as a fresh subprocess for each available
runtime and model file and prints wall time (process start to all outputs written) and
peak RSS (the child's ru_maxrss). The night and model are made in a child process: a
child's ru_maxrss starts at its parent's size when it is forked, so the parent stays
small. With --yasa_python it also runs bench/yasa_night.py on the same EDF and prints its
line beside ours. Timings on a shared machine are noisy: run it twice and compare ratios
within one run.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests import kernels  # pylint: disable=wrong-import-position

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/stage_bench", "Night, model and outputs go here.")
_EPOCHS = flags.DEFINE_integer("epochs", 2650, "Epochs in the synthetic night.")
_LITERT_PATH = flags.DEFINE_string(
    "litert_path", None, "A --target directory holding ai_edge_litert (default: "
    "the installed one, setup.cfg extra 'lite').")
_OPENVINO_PATH = flags.DEFINE_string(
    "openvino_path", None, "A --target directory holding openvino (default: the installed "
    "one, setup.cfg extra 'openvino').")
_YASA_PYTHON = flags.DEFINE_string("yasa_python", None,
                                   "Python with yasa, to run bench/yasa_night.py.")
_THREADS = flags.DEFINE_integer("threads", None, "--threads for the runtimes.")
_RUNS = flags.DEFINE_list("runs", ["all"], "Subset of run names to time (default: all).")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "An export to stage with (default: a random-weights model made "
    "in <workdir>/export).")
_PREPARE = flags.DEFINE_bool("prepare", False, "Internal: make the night and model, exit.")
_REPEATS = flags.DEFINE_integer("repeats", 1, "Passes over the runs (YASA's too), alternating.")
_FORCE_AVX2 = flags.DEFINE_bool(
    "force_avx2", False, "Run everything (YASA too) with the AVX2 kernels an AVX2-only CPU "
    "takes, where the library allows it: OpenBLAS (OPENBLAS_CORETYPE=Haswell), numpy "
    "(NPY_DISABLE_CPU_FEATURES) and oneDNN, which OpenVINO and TensorFlow use "
    "(ONEDNN_MAX_CPU_ISA=AVX2). XNNPACK (LiteRT) has no such switch: its rows keep this "
    "CPU's kernels.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _night(path: str, epochs: int) -> None:
  if os.path.exists(path):
    return
  import numpy as np  # pylint: disable=g-import-not-at-top
  from eegmobile.demo import synthetic  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  stages = np.repeat(rng.integers(0, 5, size=-(-epochs // 20)), 20)[:epochs]
  synthetic.synthesize_psg(path, stages, seed=0)


def _model(directory: str) -> None:
  if os.path.exists(os.path.join(directory, "export.json")):
    return
  import numpy as np  # pylint: disable=g-import-not-at-top
  from eegmobile import model as model_lib  # pylint: disable=g-import-not-at-top
  from eegmobile.config import SpectrogramConfig  # pylint: disable=g-import-not-at-top
  from trainers import export_lib  # pylint: disable=g-import-not-at-top
  model = model_lib.build_model(model_lib.ModelConfig(image_size=224, input_colormap="viridis"),
                                weights=None)
  os.makedirs(directory, exist_ok=True)
  keras_path = os.path.join(directory, "random.keras")
  model.save(keras_path)
  preprocessing = export_lib.Preprocessing(SpectrogramConfig(), 3000, "bench")
  calibration = np.random.default_rng(0).integers(0, 256, (16, 224, 224), dtype=np.uint8)
  export_lib.export(keras_path,
                    directory,
                    preprocessing=preprocessing,
                    calibration_images=calibration)


def _time(command: list[str], env: dict) -> tuple[float, float, str]:
  """(seconds, peak RSS MB, note) of one fresh process: its own rusage, from wait4."""
  with tempfile.TemporaryFile() as err:
    began = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not all children's
    seconds = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    message = err.read().decode(errors="replace")
  note = "" if child.returncode == 0 else f" FAILED rc={child.returncode}: {message[-300:]}"
  return seconds, usage.ru_maxrss / 1024, note


def main(argv):
  del argv
  workdir = _WORKDIR.value
  os.makedirs(workdir, exist_ok=True)
  edf = os.path.join(workdir, "night22h.edf")
  export = _EXPORT_DIR.value or os.path.join(workdir, "export")
  if _EXPORT_DIR.value and not os.path.exists(os.path.join(export, "export.json")):
    raise app.UsageError(f"--export_dir {export}: no export.json (make one with "
                         "trainers.export or bench/demo_model.py)")
  if _PREPARE.value:
    _night(edf, _EPOCHS.value)
    _model(export)
    return
  if not os.path.exists(edf) or not os.path.exists(os.path.join(export, "export.json")):
    subprocess.run([sys.executable, os.path.abspath(__file__), "--prepare"] +
                   [a for a in sys.argv[1:] if not a.startswith("--runs")],
                   check=True,
                   env={
                       **os.environ, "PYTHONPATH": ROOT
                   })
  base_env = {**os.environ, "PYTHONPATH": ROOT, **(kernels.AVX2_ENV if _FORCE_AVX2.value else {})}
  # What a user gets from the README's first staging command: an export directory, no
  # --runtime or --precision (auto: see eegmobile.staging.runtimes.resolve).
  runs = [("README: --model EXPORT_DIR (auto)", export, "auto", {
      **base_env, "PYTHONPATH":
          ":".join(filter(None, [ROOT, _LITERT_PATH.value, _OPENVINO_PATH.value]))
  }),
          ("default (auto) images_float16.tflite", os.path.join(export, "images_float16.tflite"),
           "auto", {
               **base_env, "PYTHONPATH":
                   ":".join(filter(None, [ROOT, _LITERT_PATH.value, _OPENVINO_PATH.value]))
           })]
  if _LITERT_PATH.value or importlib.util.find_spec("ai_edge_litert"):  # the 'lite' extra
    env = {**base_env, "PYTHONPATH": ":".join(filter(None, [ROOT, _LITERT_PATH.value]))}
    runs += [(f"litert {name}", os.path.join(export, name), "litert", env)
             for name in ("images_float16.tflite", "images_int8.tflite", "eegmobile_float32.tflite")
            ]
  runs += [(f"tf.lite {name}", os.path.join(export, name), "tensorflow", base_env)
           for name in ("images_float16.tflite", "eegmobile_float32.tflite")]
  runs.append(("tensorflow SavedModel", export, "tensorflow", base_env))
  if _OPENVINO_PATH.value or importlib.util.find_spec("openvino"):  # the 'openvino' extra
    env = {**base_env, "PYTHONPATH": ":".join(filter(None, [ROOT, _OPENVINO_PATH.value]))}
    for precision in ("f32", "bf16"):
      runs.append((f"openvino {precision} images_float16.tflite",
                   os.path.join(export, "images_float16.tflite"), "openvino", env, precision))
  if "all" not in _RUNS.value:
    runs = [r for r in runs if r[0] in _RUNS.value]
  print(f"night {edf}: {_EPOCHS.value} epochs; model {export}; {os.cpu_count()} CPUs"
        f"{'; AVX2 kernels forced' if _FORCE_AVX2.value else ''}")
  for repeat in range(_REPEATS.value):
    for name, model, runtime, env, *precision in runs:
      command = [
          sys.executable, "-m", "eegmobile.stage", edf, "--model", model, "--runtime", runtime,
          "--output_dir",
          os.path.join(workdir, "staged",
                       name.replace(" ", "_").replace("/", "_"))
      ]
      if _THREADS.value:
        command += ["--threads", str(_THREADS.value)]
      if precision:
        command += ["--precision", precision[0]]
      seconds, rss, note = _time(command, env)
      print(f"[{repeat + 1}] {name:40s} {seconds:7.2f} s  peak RSS {rss:7.0f} MB{note}", flush=True)
    if _YASA_PYTHON.value:
      _yasa(edf, base_env, repeat)


def _yasa(edf: str, env: dict, repeat: int) -> None:
  began = time.perf_counter()
  run = subprocess.run([
      _YASA_PYTHON.value,
      os.path.join(ROOT, "bench", "yasa_night.py"), "--edf", edf, "--channel", "EEG Fpz-Cz"
  ],
                       capture_output=True,
                       text=True,
                       env={
                           k: v for k, v in env.items() if k != "PYTHONPATH"
                       },
                       check=False)
  wall = time.perf_counter() - began
  if run.returncode:
    print(f"[{repeat + 1}] {'yasa':40s} FAILED rc={run.returncode}: {run.stderr[-300:]}")
    return
  line = json.loads(run.stdout.strip().splitlines()[-1])
  print(
      f"[{repeat + 1}] {'yasa (cold process)':40s} {wall:7.2f} s  peak RSS "
      f"{line['peak_rss_mb']:7.0f} MB  (its own timing {line['seconds']:.2f} s, "
      f"{line['epochs']} epochs)",
      flush=True)


if __name__ == "__main__":
  app.run(main)
