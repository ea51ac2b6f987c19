"""Workers sharing a workdir: each claims folds, trains them, and (for s3://) uploads them.

Flag-free; `trainers.cv` is the command. Any number of workers (processes, GPUs,
machines) may run on one workdir at once: each claims a fold (`claims`) before training
it, so every fold is trained once; a fold whose worker died is taken over and resumed.

An s3:// workdir is trained in a local scratch mirror (`workdir.scratch`): the run record
is created in the store once (a conditional put), each fold is downloaded before it is
resumed and uploaded after every epoch, its progress files last, so the store never shows
progress ahead of its checkpoint.
"""

import dataclasses
import os
import time
from typing import Callable, Optional, Sequence

from eegmobile import storage
from trainers import claims
from trainers import fold_results
from trainers import report_lib
from trainers import run_lib
from trainers.config import TrainConfig

# Uploaded after a fold's other files, so the store never shows progress ahead of its checkpoint.
PROGRESS_FILES = (fold_results.HISTORY, "state.json", fold_results.PREDICTIONS, "metrics.json",
                  fold_results.DONE)


@dataclasses.dataclass(frozen=True)
class Workdir:
  """Where a worker trains.

  Attributes:
    url: the workdir asked for (a local path or an s3:// URL).
    local: where this worker's files are: `url` itself, or its scratch mirror.
  """
  url: str
  local: str

  @property
  def remote(self) -> bool:
    return self.url != self.local

  def fold(self, fold: int) -> str:
    """Where the fold's claim and files are kept (in the store for a remote workdir)."""
    return storage.join(self.url, os.path.basename(fold_results.fold_dir(self.local, fold)))


def start_run(config: TrainConfig, manifest: dict, workdir: Workdir, *, restart: bool) -> dict:
  """`run_lib.start_run`, for a remote workdir too: its run.json is created once or compared.

  Raises:
    run_lib.RunMismatchError: the workdir holds another run. ValueError: --restart asked of
    a remote workdir.
  """
  if not workdir.remote:
    return run_lib.start_run(config, manifest, restart=restart)
  if restart:
    raise ValueError(f"{workdir.url}: --restart is not supported for s3:// workdirs; "
                     "use a new workdir URL")
  remote_run = storage.join(workdir.url, run_lib.RUN_FILE)
  local_run = os.path.join(workdir.local, run_lib.RUN_FILE)
  for _ in range(2):  # a second pass when another worker created run.json meanwhile
    recorded = storage.read_versioned(remote_run)[0]
    if recorded is not None:
      storage.write_bytes(local_run, recorded)
    try:
      run = run_lib.start_run(config, manifest)
    except run_lib.RunMismatchError as e:
      raise run_lib.RunMismatchError(str(e).replace(workdir.local, workdir.url),
                                     e.differences) from None
    if recorded is not None:
      return run
    if storage.create_exclusive(remote_run, storage.read_bytes(local_run)):
      folds_file = os.path.join(workdir.local, run_lib.FOLDS_FILE)
      storage.create_exclusive(storage.join(workdir.url, run_lib.FOLDS_FILE),
                               storage.read_bytes(folds_file))
      return run
    os.remove(local_run)
  raise AssertionError("unreachable: run.json exists after a failed conditional create")


def train_claimed(config: TrainConfig, fold: int, workdir: Workdir, claim_timeout_s: float,
                  train: Callable[..., dict], report: Callable[[str], None]) -> bool:
  """Trains `fold` if this worker can claim it; returns whether it did.

  Args:
    config: the run (its workdir is `workdir.local`).
    fold: a fold number or fold_results.FINAL.
    workdir: where the run is.
    claim_timeout_s: seconds without a heartbeat after which a claim is dead.
    train: `train_lib.train_fold` (passed in: importing it imports TensorFlow).
    report: prints one line (the fold's result).
  """
  fold_config = dataclasses.replace(config, fold=fold)
  directory = fold_results.fold_dir(workdir.local, fold)
  claimed = workdir.fold(fold) if workdir.remote else directory
  after_epoch = None
  if workdir.remote:  # train in the mirror, uploading each checkpoint

    def after_epoch(local_dir):
      storage.upload_tree(local_dir, claimed, skip=(claims.CLAIM,), last=PROGRESS_FILES)

  if not claims.try_claim(claimed, claim_timeout_s):
    return False
  name = "final" if fold == fold_results.FINAL else f"fold {fold}"
  report(f"{name}: training ({config.total_epochs} epochs)")
  try:
    with claims.Heartbeat(claimed, max(1.0, claim_timeout_s / 10)):
      if workdir.remote:  # resume from what a previous worker uploaded
        storage.download_tree(claimed, directory, skip=(claims.CLAIM,))
        if fold == fold_results.FINAL:  # the folds' results (no checkpoints), for the card
          storage.download_tree(workdir.url, workdir.local, only=report_lib.INPUTS)
      result = train(fold_config, after_epoch=after_epoch)
      if workdir.remote:
        after_epoch(directory)  # predictions, metrics, DONE
  finally:
    claims.release(claimed)
  report(_summary(result, fold, claimed if workdir.remote else directory))
  return True


def _summary(result: dict, fold: int, shown: str) -> str:
  if fold != fold_results.FINAL:
    return (f"fold {result['fold']} ({', '.join(result['test_subjects'])}): "
            f"ACC {result['acc']:.2f}  MF1 {result['mf1']:.2f}  kappa {result['kappa']:.3f}")
  cv = result["evaluation"]["cross_validation"]
  done = "none" if cv == "none" else f"{cv['num_folds_done']} fold(s) pooled"
  return (f"final: {shown}/{result['model_file']}, model card {shown}/model_card.json "
          f"(cross-validation metrics: {done})")


def train_all(config: TrainConfig,
              fold_numbers: Sequence[int],
              workdir: Workdir,
              claim_timeout_s: float,
              train: Callable[..., dict],
              report: Callable[[str], None] = print,
              sleep: Optional[Callable[[float], None]] = None) -> None:
  """Trains every fold once, sharing them with any other worker on the same workdir.

  A fold claimed by another live worker is left to it and checked again later; one whose
  worker died (no heartbeat for claim_timeout_s seconds) is taken over and resumed.
  """
  pending = list(fold_numbers)
  while pending:
    trained = [
        f for f in pending if train_claimed(config, f, workdir, claim_timeout_s, train, report)
    ]
    pending = [fold for fold in pending if fold not in trained]
    if pending and not trained:
      report(f"waiting: fold(s) {', '.join(map(str, pending))} claimed by other workers")
      (sleep or time.sleep)(min(30.0, claim_timeout_s / 4))
