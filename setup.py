"""For Beam runners that stage this package with --setup_file ./setup.py (e.g. Dataflow).

Metadata lives in setup.cfg; pip uses pyproject.toml.
"""
import setuptools

setuptools.setup()
