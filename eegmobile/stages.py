"""Sleep stages: the five AASM classes and how Sleep-EDF's R&K annotations map onto them."""

from typing import Mapping

# Class index -> name. The index is the label stored in every TFRecord example.
STAGES: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")
NUM_STAGES = len(STAGES)
W, N1, N2, N3, REM = range(NUM_STAGES)

# R&K hypnogram annotation -> AASM class index (S3 and S4 merge into N3).
STAGE_OF_ANNOTATION: Mapping[str, int] = {
    "Sleep stage W": W,
    "Sleep stage 1": N1,
    "Sleep stage 2": N2,
    "Sleep stage 3": N3,
    "Sleep stage 4": N3,
    "Sleep stage R": REM,
}

# Annotations that are known but carry no stage; their epochs are dropped and counted.
DROPPED_ANNOTATIONS: tuple[str, ...] = ("Sleep stage ?", "Movement time")
