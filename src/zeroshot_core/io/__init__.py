"""Reading and writing image volumes: the :class:`~zeroshot_core.io.volume.Volume`,
one module per file format, and the suffix → reader/writer table in
:mod:`zeroshot_core.io.formats`."""
