"""Image I/O (float ``[0, 1]`` arrays, 8/16-bit files) and luma/chroma conversions."""

from .colour import (  # noqa: F401
    CHROMA_RULES,
    restore_colour,
    rgb_to_luma,
    rgb_to_ycrcb,
    rgb_to_ycrcb_u8,
    ycrcb_to_rgb,
    ycrcb_to_rgb_u8,
)
from .image import WRITE_FORMATS, LoadedImage, as_loaded_image, read_image, to_float_array, write_image  # noqa: F401
