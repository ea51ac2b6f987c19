r"""What importing each heavy library costs a command: the reasons for our lazy imports.

  python bench/startup.py [--repeats 5]

Each import is timed in a fresh process (the median of --repeats), after the modules every
command imports anyway (numpy, absl), so each row is what that import adds to start-up.
BUILD_NOTES.md ("Start-up") quotes the table; the lazy imports in the code point there.
"""

import argparse
import statistics
import subprocess
import sys

IMPORTS = (
    "tensorflow",
    "keras",
    "apache_beam",
    "matplotlib",
    "matplotlib.pyplot",
    "scipy.signal",
    "scipy.sparse",
    "scipy.linalg",
    "sklearn.metrics",
    "boto3",
    "openvino",
    "ai_edge_litert.interpreter",
    "eegmobile.staging.cli",
)


def _seconds(module: str) -> float:
  code = ("import time, numpy, absl.flags; t = time.perf_counter(); "
          f"import {module}; print(time.perf_counter() - t)")
  run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  return float(run.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  print("| import | seconds (median of %d fresh processes) |\n| --- | ---: |" % args.repeats)
  for module in IMPORTS:
    try:
      times = [_seconds(module) for _ in range(args.repeats)]
    except subprocess.CalledProcessError:
      print(f"| {module} | not installed |")
      continue
    print(f"| {module} | {statistics.median(times):.2f} |", flush=True)


if __name__ == "__main__":
  main()
