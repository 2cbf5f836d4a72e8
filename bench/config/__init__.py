"""Configuration: the protocol every method runs under, method settings resolved from the
command line, the device, and the canonical hash that fingerprints them."""
