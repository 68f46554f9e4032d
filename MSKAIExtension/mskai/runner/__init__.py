"""Job runners: :class:`~mskai.runner.inprocess.InProcessRunner` (a thread) and
:class:`~mskai.runner.subprocess_runner.SubprocessRunner` (a child process streaming JSON lines).
"""
