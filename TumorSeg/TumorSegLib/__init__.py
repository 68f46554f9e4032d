"""TumorSeg module internals (no Qt): ``logic`` (the entry point), ``measure_on_edit``,
``job_bridge`` (runner), ``distance_map``, ``exports``, ``response_panel``, ``synthetic``;
and ``parameters`` (Slicer only)."""
