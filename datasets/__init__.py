"""The HDF5 dataset format, torch Dataset views, and loaders for data users bring.

Planned (see the project's issues). Never imported as a top-level ``datasets``: it is ``dynlearn.datasets``.
"""
