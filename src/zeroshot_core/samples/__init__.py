"""Sample data: the bundled brain phantom (``data/``) and the simulator that made it."""
