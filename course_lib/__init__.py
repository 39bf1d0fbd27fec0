"""course_lib: DeepFill v1 (Yu et al., CVPR 2018, "Generative Image Inpainting with
Contextual Attention") rebuilt in PyTorch, faithful to the official release.

Conventions (the course's style guide, see README.md): images ``x`` are NCHW float in
[-1, 1], RGB; ``mask`` is (B or 1, 1, H, W) with 1 = hole, 0 = known;
``x_incomplete = x * (1 - mask)``.
"""
from .ops import GenConv, GenDeconv, SameConv2d, pad_same, resize_nearest, same_padding
from .seed import make_generator, seed_everything

__version__ = "0.1.0"
