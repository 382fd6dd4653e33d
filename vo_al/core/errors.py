"""Typed errors. Each names the file, value or service that failed."""

from __future__ import annotations


class VoAlError(Exception):
    """Base class of every error vo-al raises on purpose."""


class SpectrumReadError(VoAlError):
    """A file could not be read as a spectrum."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnusableSpectrumError(VoAlError):
    """A spectrum was read but cannot be preprocessed (no window coverage, all-NaN, constant)."""

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class ParameterError(VoAlError, ValueError):
    """A parameter is out of its allowed range or of the wrong kind."""

    def __init__(self, name: str, value, expected: str):
        self.name = name
        self.value = value
        super().__init__(f"{name}={value!r}: {expected}")


class ProjectError(VoAlError):
    """A project folder is missing, corrupt or in the wrong state for the requested step."""


class PoolError(VoAlError):
    """The pool store is missing, corrupt or inconsistent."""


class Cancelled(VoAlError):
    """A long job was cancelled by the user between two steps."""
