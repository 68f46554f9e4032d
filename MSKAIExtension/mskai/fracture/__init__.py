"""Classical fracture analysis: fragments, their alignment, fracture candidates, vertebrae."""
