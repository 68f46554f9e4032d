"""Re-exports :mod:`mskai.phantoms.intensity`: shipped code (the demo, training) uses it too,
so it lives in the package and there is one copy."""

from mskai.phantoms.intensity import *  # noqa: F403
