"""Re-exports :mod:`mskai.phantoms.simulated_fracture`: shipped code (the demo, training)
uses it too, so it lives in the package and there is one copy."""

from mskai.phantoms.simulated_fracture import *  # noqa: F403
