"""eegmobile: sleep staging from Sleep-EDF polysomnography.

Data path (one module per stage): `sleep_edf` (find recordings) -> `edf_reader`
(read the EEG channel and the hypnogram) -> `hypnogram` (30 s epochs and their stage
labels) -> `spectrogram` (one uint8 image per epoch) -> `tfrecords.schema` (example
encoding) -> `beam_pipelines` (the Beam job). Training: `tfrecords.datasets` ->
`eegmobile.model` -> `trainers.train_lib` -> `eegmobile.evaluation`.
"""

__version__ = "0.1.0"
