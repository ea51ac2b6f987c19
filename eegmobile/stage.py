"""`python -m eegmobile.stage`: the staging command, kept at the name the README gives it.

The command itself is `eegmobile/staging/cli.py`; the staging app is `eegmobile/staging/`.
"""

from absl import flags

from eegmobile.staging import cli

if __name__ == "__main__":
  __doc__ = cli.__doc__  # what --help prints
  flags.adopt_module_key_flags(cli)
  cli.run()
