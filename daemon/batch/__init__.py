"""Batch inference: OpenAI Batch API JSONL in, results out, resumable; for `ingot batch` and /v1/batches.

| module | job |
|---|---|
| `lines` | read and check an input file: requests, bad lines (with line numbers), duplicate custom_ids |
| `execute` | one request: body -> servicer messages -> the reply an endpoint would give (`Calls` runs them) |
| `records` | the output line format (`id`, `custom_id`, `response`, `error`) |
| `results` | result files: append + fsync per line, torn last line repaired on open, atomic rewrite |
| `runner` | `BatchRun`: what is left to do, `concurrency` in flight, retries, stop, input-order sort |
| `grpc_calls`, `inprocess_calls` | `Calls` over gRPC (the CLI) and over the servicers (the daemon) |
| `jobs` | /v1/files and /v1/batches state under `$INGOT_HOME/batches`, jobs run and resumed in the daemon |

See docs/batch.md.
"""
