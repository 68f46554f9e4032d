"""Re-exports :mod:`mskai.phantoms.long_bone`: shipped code (the demo, training) uses it too,
so it lives in the package and there is one copy."""

from mskai.phantoms.long_bone import *  # noqa: F403
