"""Interactive segmentation from clicks (non-learned) and its evaluation with simulated clicks."""

from mskai.interactive.prompts import Prompts
from mskai.interactive.segment import segment_from_prompts

__all__ = ["Prompts", "segment_from_prompts"]
