"""CartilageQuant module internals: ``logic`` (MRML, no Qt) and ``parameters`` (Slicer only)."""
