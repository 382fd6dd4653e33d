"""vo-al: active deep learning for finding emission-line stars in large spectroscopic surveys."""

__version__ = "0.2.0"

# the import paths of vo-al 0.1 keep working for one release, with a DeprecationWarning
from vo_al.core import moved as _moved  # noqa: E402

_moved.install()
