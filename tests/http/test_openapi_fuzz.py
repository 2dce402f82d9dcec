"""Property-based fuzzing of the HTTP API against its own OpenAPI document (schemathesis).

Every operation in /openapi.json gets generated requests, valid and not; each
reply must be no 5xx, have a status and content type the document declares,
and a body matching the declared schema. The daemon must still answer at the
end. Bounded: a few examples per operation, so the whole run takes seconds.

/api/pull and /api/push are left out: their requests name registries, and a
generated host that does not answer is honestly a 503 (tested for real, with
a real registry, in test_ollama_client.py).
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from http_helpers import MODEL, WAIT_S, Served

EXAMPLES = 6
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SKIPPED = {("POST", "/api/pull"), ("POST", "/api/push")}
OPERATIONS = [
    ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/embeddings"),
    ("GET", "/v1/models"), ("GET", "/v1/models/{model}"),
    ("POST", "/api/generate"), ("POST", "/api/chat"), ("POST", "/api/embed"), ("POST", "/api/embeddings"),
    ("GET", "/api/tags"), ("POST", "/api/show"), ("GET", "/api/ps"), ("POST", "/api/copy"),
    ("DELETE", "/api/delete"), ("GET", "/api/version"),
    ("GET", "/health"), ("GET", "/metrics"), ("GET", "/"), ("GET", "/ui/state"),
    ("POST", "/v1/files"), ("GET", "/v1/files"), ("GET", "/v1/files/{file_id}"), ("GET", "/v1/files/{file_id}/content"),
    ("DELETE", "/v1/files/{file_id}"), ("POST", "/v1/batches"), ("GET", "/v1/batches"), ("GET", "/v1/batches/{batch_id}"),
    ("POST", "/v1/batches/{batch_id}/cancel"),
]
# Operations without a body have no invalid requests to make (any path segment is a valid model name).
NO_INPUT = {
    ("GET", "/v1/models"), ("GET", "/v1/models/{model}"), ("GET", "/api/tags"), ("GET", "/api/ps"),
    ("GET", "/api/version"), ("GET", "/health"), ("GET", "/metrics"), ("GET", "/"), ("GET", "/ui/state"),
    ("GET", "/v1/files"), ("GET", "/v1/files/{file_id}"), ("GET", "/v1/files/{file_id}/content"),
    ("DELETE", "/v1/files/{file_id}"), ("GET", "/v1/batches"), ("GET", "/v1/batches/{batch_id}"),
    ("POST", "/v1/batches/{batch_id}/cancel"),
}
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if (m, p) not in NO_INPUT
]


@pytest.fixture(scope="module")
def api_schema(served: Served) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


def test_every_operation_is_fuzzed(api_schema: OpenApiSchema) -> None:
    documented = {(operation.ok().method.upper(), operation.ok().path) for operation in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS) | SKIPPED


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_every_reply_conforms(
    api_schema: OpenApiSchema, served: Served, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # no example database in the repository; each run starts fresh
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def replies_conform(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=served.url, checks=CHECKS, timeout=WAIT_S)

    replies_conform()


def test_daemon_still_serves_after_fuzzing(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        reply = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False,
                                                  "options": {"num_predict": 2}})
        assert reply.status_code == 200 and reply.json()["eval_count"] == 2
        assert MODEL in [m["id"] for m in http.get("/v1/models").json()["data"]]


def test_document_declares_both_apis(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=WAIT_S) as http:
        document = http.get("/openapi.json").json()
    paths = set(document["paths"])
    assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/models/{model}"} <= paths
    assert {f"/api/{name}" for name in ("generate", "chat", "embed", "tags", "show", "ps", "pull", "push", "copy",
                                         "delete", "version")} <= paths
    assert {"/health", "/metrics"} <= paths
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]  # validation errors answer 400 here
