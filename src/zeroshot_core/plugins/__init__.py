"""Plugins: the hook specifications third parties implement (:mod:`.hookspecs`) and the
manager that loads built-in and third-party plugins into registries (:mod:`.manager`)."""
