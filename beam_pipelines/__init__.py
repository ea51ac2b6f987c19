"""The Beam job that builds TFRecords from Sleep-EDF recordings (`python -m beam_pipelines.build`)."""
