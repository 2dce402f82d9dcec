"""Generated stubs of the ingot gRPC contract (package ingot.v1)."""
