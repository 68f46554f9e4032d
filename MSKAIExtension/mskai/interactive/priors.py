"""Physical intensity priors: voxels that cannot be tumour, whatever the clicks say.

On CT, fat (below about -30 HU; fat is -190..-30 HU) and air are never soft-tissue tumour.
Lipomatous tumours are fat, so the prior is off when the tumour's own intensity at the
clicks is fat-like. Bone is *not* excluded by HU: mineralised tumour matrix (osteosarcoma,
chondrosarcoma) is as dense as bone; the solver's far-intensity rule handles normal bone.
MR intensities are arbitrary, so MR has no such prior.
"""

from __future__ import annotations

import numpy as np

FAT_MAX_HU = -30.0


def never_tumour(image: np.ndarray, modality: str, tumour_level: float) -> np.ndarray | None:
    """Boolean mask of voxels of ``image`` (smoothed) that cannot be tumour, or None."""
    if modality != "CT" or tumour_level <= FAT_MAX_HU:
        return None
    return image < FAT_MAX_HU
