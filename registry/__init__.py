"""ingot.registry."""
