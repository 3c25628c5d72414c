"""User-facing errors.

Every problem caused by bad input (a missing file, a corrupt image, weights whose keys do
not fit, an out-of-range option) is raised as :class:`UnifuseError` (or a subclass) with a
one-line message naming the file and the problem. The CLI prints these messages without a
traceback and exits with a non-zero status.
"""

from __future__ import annotations


class UnifuseError(Exception):
    """Base class for errors caused by user input; the message is shown as-is."""


class ImageReadError(UnifuseError):
    """An image file is missing, unreadable, corrupt or of an unsupported kind."""


class InputMismatchError(UnifuseError):
    """Two inputs that must agree (size, pairing, count) do not."""


class WeightsError(UnifuseError):
    """Weights that cannot be loaded into a model (missing/unexpected keys, bad shapes)."""


class ConfigError(UnifuseError):
    """An option or configuration value is out of range or of the wrong type."""
