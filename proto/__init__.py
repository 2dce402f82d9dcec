"""ingot.proto."""
