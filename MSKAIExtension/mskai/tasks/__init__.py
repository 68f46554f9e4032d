"""Tasks: image (+ prompts or an existing segmentation) -> :class:`mskai.segments.Result`."""
