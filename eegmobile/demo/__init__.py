"""Demo and test support, kept out of the data path: synthetic PSGs in the Sleep-EDF layout.

`synthetic` writes whole synthetic nights in the real Sleep-EDF layout (the demo set, and
stand-ins for PSG signals that cannot be downloaded), with `eegmobile.edf_writer`.
Building or reading a real dataset never imports this package.
"""
