"""``mskai serve``: the web viewer (trame-slicer) on the same core as the CLI.

A second face on the same logic (DESIGN.md): clicks run :func:`mskai.tasks.tumor.run_tumor`'s
segmentation through the job runner (:mod:`mskai.runner`), results go into the segmentation
node through :func:`mskai.slicer_io.apply_result` (its merge policies), and measurements
after an edit go through the CLI's ``--labels`` path. Nothing here is imported by the core.
"""
