"""clean-fid's "clean" resize (Parmar et al. 2022): the FID network's 299x299 input made without aliasing.

Each channel of each uint8 image becomes a PIL float image (mode "F"), is resized with PIL's bicubic filter (which
widens its kernel when shrinking, so it antialiases), and is clipped to [0, 255]: the same steps as clean-fid's
`make_resizer("PIL", False, "bicubic", (299, 299))` (build_resizer("clean")), with no quantisation after the resize.
The TF1 bilinear resize of inception.resize_like_tf1 reproduces the published (legacy) FID numbers instead; the two
give different FIDs on the same images, more so for small images such as 28x28 or 32x32.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

SIZE = 299


def resize_clean(images: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 (N, C, size, size) in [0, 255], on the CPU (PIL works there).

    Any C: channels are resized one at a time, so a grayscale batch (C = 1) costs a third of its 3-channel copy and
    gives the same plane (expand it to 3 channels afterwards, as inception.preprocess does).
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"resize_clean takes uint8 images, got {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"resize_clean takes (N, C, H, W) images, got shape {tuple(images.shape)}")
    src = images.cpu().numpy()
    n, c = src.shape[:2]
    out = np.empty((n, c, size, size), dtype=np.float32)
    for i in range(n):
        for ch in range(c):
            plane = Image.fromarray(src[i, ch].astype(np.float32))             # mode "F": 32-bit float
            out[i, ch] = np.asarray(plane.resize((size, size), resample=Image.BICUBIC))
    np.clip(out, 0, 255, out=out)   # bicubic overshoots near edges
    return torch.from_numpy(out)
