"""Staging anyone's night with an exported model: the app, apart from the data path.

  cli           the command (`python -m eegmobile.stage`)
  stage_lib     one night: read the channel, score it in batches, write its outputs
  runtimes      load an export (LiteRT, OpenVINO, TensorFlow) behind one interface
  openvino_runtime   OpenVINO on the CPU
  outputs       the per-night files: TSV, EDF+ hypnogram, PNG, sleep statistics JSON
  sleep_stats   AASM sleep statistics of a hypnogram

It uses the core (`eegmobile.edf_reader`, `eegmobile.spectrogram`, ...) and never imports
`tfrecords`, `beam_pipelines` or `trainers`; with LiteRT it runs without TensorFlow.
"""
