"""Registration of the frames of a stack to a reference frame before fusion.

* :mod:`.transform`: the transform convention (reference pixel -> source pixel, 3x3) and the
  JSON file format of ``--save-transforms`` / ``--transforms``;
* :mod:`.register`: intensity-invariant coarse-to-fine ECC with a feature fallback and
  plausibility checks (OpenCV, imported lazily);
* :mod:`.warp`: warping a frame into the reference frame, border rule.
"""

from .register import AlignmentError, RegistrationConfig, register_frames, register_pair  # noqa: F401
from .transform import MOTIONS, FrameTransform, Registration, corner_error, load_transforms, save_transforms  # noqa: F401
from .warp import warp_to_reference  # noqa: F401

ALIGN_CHOICES = ("none",) + MOTIONS

__all__ = ["ALIGN_CHOICES", "MOTIONS", "AlignmentError", "RegistrationConfig", "register_frames", "register_pair", "FrameTransform",
           "Registration", "corner_error", "load_transforms", "save_transforms", "warp_to_reference"]
