"""Schema fuzzing: schemathesis generates valid and invalid requests from the served OpenAPI
schema and sends them to a running `ntr serve`; no request may get a 5xx."""

import hypothesis
import pytest
import schemathesis
from schemathesis.generation.modes import GenerationMode

from ntr.serving.process import ServerProcess

EXAMPLES = 60  # per operation and mode; enough to hit every field's edge cases in CI time


@pytest.fixture(scope="module")
def server(tiny_export, tiny_index, tmp_path_factory):
    db = str(tmp_path_factory.mktemp("fuzz") / "events.sqlite")
    process = ServerProcess(tiny_export, tiny_index, db, "--max-k", "50", "--max-history", "40")
    yield process
    assert process.stop_gracefully(), process.log()


def fuzz(operation, mode, url, seen):
    """A Hypothesis test that sends generated requests for one operation to `url`."""

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run: CI stays reproducible
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call(base_url=url)
        seen.setdefault(operation.path, set()).add(response.status_code)
        assert response.status_code < 500, (
            f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}\n"
            f"body: {str(case.body)[:500]}"
        )

    return check


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(server, mode):
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/healthz", "/v1/model", "/v1/events", "/v1/recommend"}
    seen = {}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # GETs take no input to get wrong
        fuzz(operation, mode, server.url, seen)()
    # The fuzzer reached the endpoints: positive mode gets 200s, negative mode 4xx.
    want = 200 if mode is GenerationMode.POSITIVE else 422
    assert all(
        any(code == want for code in codes) for path, codes in seen.items() if path.startswith("/v1/")
    ), seen
