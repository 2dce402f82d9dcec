"""ingot's public gRPC contract: .proto sources under ingot/v1/ and their generated stubs.

Regenerate the stubs with `scripts/gen-proto` after editing a .proto file.
"""
