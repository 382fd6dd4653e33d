"""vo-al: active deep learning for finding emission-line stars in large spectroscopic surveys."""

__version__ = "0.1.0"
