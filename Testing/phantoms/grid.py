"""Re-exports :mod:`mskai.phantoms.grid`: shipped code (the demo, training) uses it too,
so it lives in the package and there is one copy."""

from mskai.phantoms.grid import *  # noqa: F403
