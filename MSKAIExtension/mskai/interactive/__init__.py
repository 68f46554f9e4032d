"""Interactive segmentation from clicks (non-learned and learned) and its evaluation."""

from mskai.interactive.learned import METHODS, segment_learned, segment_with_method
from mskai.interactive.prompts import Prompts
from mskai.interactive.segment import segment_from_prompts

__all__ = ["METHODS", "Prompts", "segment_from_prompts", "segment_learned",
           "segment_with_method"]
