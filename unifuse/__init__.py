"""unifuse: unified image fusion.

Quick use::

    import unifuse
    unifuse.list_models()
    net = unifuse.load_model("tita")            # network, eval mode
    img = unifuse.fuse("ir.png", "vi.png")      # PIL image
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._openmp import prefer_short_openmp_spin

prefer_short_openmp_spin()  # before torch is imported (see unifuse/_openmp.py)

from .errors import UnifuseError  # noqa: E402,F401
from .models import list_models, load_model, create_model, register_model  # noqa: E402,F401


def fuse(*args, **kwargs):
    """Fuse two images, or a list of two or more; see :func:`unifuse.inference.fuse.fuse`."""
    from .inference.fuse import fuse as _fuse

    return _fuse(*args, **kwargs)
