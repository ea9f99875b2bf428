"""Schema fuzzing: schemathesis generates valid and invalid requests from the served OpenAPI
schema and sends them to a running `ntr serve --auth-keys`, as a service, as one user acting
for whatever user the fuzzer picks, and without credentials; no request may get a 5xx.
(NaN, Infinity and lone surrogates, which JSON Schema cannot describe, are sent by hand in
test_security.py.)"""

import hypothesis
import pytest
import schemathesis
from schemathesis.generation.modes import GenerationMode

from ntr.serving import auth
from ntr.serving.process import ServerProcess

EXAMPLES = 60  # per operation and mode; enough to hit every field's edge cases in CI time


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fuzz-auth") / "keys.json")
    return path, {
        "service": auth.add_key(path, "svc", "service"),
        "user": auth.add_key(path, "u", "user", "u1"),
    }


@pytest.fixture(scope="module")
def server(tiny_export, tiny_index, keys, tmp_path_factory):
    db = str(tmp_path_factory.mktemp("fuzz") / "events.sqlite")
    # Rate limits high enough that the fuzzer's bursts reach the handlers.
    flags = ("--max-k", "50", "--max-history", "40", "--auth-keys", keys[0])
    flags += ("--token-rate", "1000000/s", "--user-rate", "1000000/s")
    process = ServerProcess(tiny_export, tiny_index, db, *flags)
    yield process
    assert process.stop_gracefully(), process.log()


def fuzz(operation, mode, url, seen, headers, own_user=None):
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
        response = case.call(base_url=url, headers=headers)
        seen.setdefault(operation.path, set()).add(response.status_code)
        assert response.status_code < 500, (
            f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}\n"
            f"body: {str(case.body)[:500]}"
        )
        if own_user is not None and response.status_code == 200 and isinstance(case.body, dict):
            # A user's credential is served for its own user (or no stored user) only.
            assert case.body.get("user_id") in (None, own_user), (case.body, response.text[:300])

    return check


@pytest.mark.parametrize("who", ["service", "user", "nobody"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(server, keys, mode, who):
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/healthz", "/v1/model", "/v1/events", "/v1/recommend"}
    seen = {}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # GETs take no input to get wrong
        headers = {"Authorization": f"Bearer {keys[1][who]}"} if who != "nobody" else {}
        fuzz(operation, mode, server.url, seen, headers, "u1" if who == "user" else None)()
    v1 = {path: codes for path, codes in seen.items() if path.startswith("/v1/")}
    if who == "nobody":
        assert all(200 not in codes and 401 in codes for codes in v1.values()), seen
    elif who == "user":  # the fuzzer's user ids are rarely "u1": refused (each 200 checked above)
        assert any(403 in codes for codes in v1.values()), seen
    else:  # the fuzzer reached the endpoints: positive mode gets 200s, negative mode 4xx
        want = 200 if mode is GenerationMode.POSITIVE else 422
        assert all(any(code == want for code in codes) for codes in v1.values()), seen
