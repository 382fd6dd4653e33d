"""The Qt-free core of vo-al: spectra I/O, preprocessing, pool, model, active learning.

Nothing in this package may import a Qt binding or pyqtgraph (checked by the import-linter
contract in pyproject.toml and by tests/test_architecture.py).
"""
