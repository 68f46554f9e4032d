"""Classical (non-learned) segmentation methods used by the tasks."""
