"""Demo and test support, kept out of the data path: synthetic PSGs and an EDF writer.

`synthetic` writes whole synthetic nights in the real Sleep-EDF layout (the demo set, and
stand-ins for PSG signals that cannot be downloaded); `edf_writer` writes EDF and EDF+
hypnogram files. Building or reading a real dataset never imports this package.
"""
