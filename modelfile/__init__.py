"""ingot.modelfile."""
