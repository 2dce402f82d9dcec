"""The `ingot` proto package; its import path mirrors the .proto files' (`ingot/v1/...`)."""
