"""ingot.daemon."""
