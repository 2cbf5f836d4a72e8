"""The plugin API, the bottom layer: hook specs, part interfaces, method base classes,
registries, the plugin host and the one user-facing error type. Everything else in
``bench`` builds on it; it imports nothing else from ``bench``."""
