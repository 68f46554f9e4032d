"""Inference: preprocess (orient, resample, normalise) -> sliding window -> postprocess.

:func:`mskai.inference.pipeline.run_segmentation` ties the steps together for one model of
the manifest and returns label masks on the input image's own grid.
"""
