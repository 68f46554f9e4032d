"""CartilageQuant module internals, all without Qt: ``logic`` (MRML in, MRML out),
``job_bridge`` (the measurement job on a runner), ``tables``, ``models`` (thickness-coloured
surfaces), ``plots`` (thickness profiles); ``parameters`` needs the Slicer application."""
