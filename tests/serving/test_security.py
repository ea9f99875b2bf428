"""Who may do what, and inputs that never 500: `ntr serve --auth-keys` on a loopback port,
attacked the way the issue-23 probe did (each test failed on the service before auth)."""

import json
import os
import stat
import time

import httpx
import pytest

from ntr.cli.main import main
from ntr.retrieval.exported import ExportedModel
from ntr.serving import auth
from ntr.serving.process import ServerProcess
from tests.serving.conftest import watch


@pytest.fixture(scope="module")
def model(tiny_export):
    return ExportedModel(tiny_export)


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    """A keys file with an admin, a service and alice's user key, and a token signing key."""
    folder = tmp_path_factory.mktemp("auth")
    keys = str(folder / "keys.json")
    made = {scope: auth.add_key(keys, scope, scope) for scope in ("admin", "service")}
    made["alice"] = auth.add_key(keys, "alice-app", "user", "alice")
    signing = str(folder / "signing.pem")
    auth.init_signing(keys, signing)
    made.update(keys=keys, signing=signing)
    return made


@pytest.fixture(scope="module")
def server(tiny_export, tiny_index, creds, tmp_path_factory):
    db = str(tmp_path_factory.mktemp("secure") / "events.sqlite")
    process = ServerProcess(tiny_export, tiny_index, db, "--auth-keys", creds["keys"], "--max-k", "100")
    yield process
    assert process.stop_gracefully(), process.log()


def bearer(credential: str) -> dict:
    return {"Authorization": f"Bearer {credential}"}


@pytest.fixture
def as_(server, creds):
    """as_("service") -> an httpx client sending that credential."""
    clients = []

    def make(who: str | None, token: str | None = None):
        headers = {} if who is None and token is None else bearer(token or creds[who])
        client = httpx.Client(base_url=server.url, timeout=30, headers=headers)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_no_credentials_or_wrong_ones_get_401(as_, creds):
    expired = auth.issue_token(creds["signing"], "alice", 1, time.time() - 3600)
    for client in (as_(None), as_(None, "ntr_not-a-key"), as_(None, expired), as_(None, "a.b.c")):
        for method, path, body in (
            ("POST", "/v1/recommend", {"user_id": "victim", "k": 5}),
            ("POST", "/v1/events", {"user_id": "victim", "events": [watch("x", 1)]}),
            ("GET", "/v1/model", None),
        ):
            response = client.request(method, path, json=body)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    # A token signed with another key proves nothing either.
    other = str(os.path.dirname(creds["keys"])) + "/other.pem"
    auth.init_signing(str(os.path.dirname(creds["keys"])) + "/other-keys.json", other)
    forged = auth.issue_token(other, "alice", 600, time.time())
    assert as_(None, forged).post("/v1/recommend", json={"user_id": "alice"}).status_code == 401


def test_a_user_reads_and_writes_only_its_own_history(as_, creds, model):
    service, alice = as_("service"), as_("alice")
    token = as_(None, auth.issue_token(creds["signing"], "alice", 600, time.time()))
    victim = [watch(model.item_ids[i], 100 + i) for i in range(6)]
    assert service.post("/v1/events", json={"user_id": "victim", "events": victim}).status_code == 200
    before = service.post("/v1/recommend", json={"user_id": "victim", "k": 20}).json()
    for client in (alice, token):
        # The probe's read: another user's recommendations (and, with debug, their history).
        assert client.post("/v1/recommend", json={"user_id": "victim", "k": 100}).status_code == 403
        hide = {"item_id": before["items"][0]["item_id"], "timestamp": 999, "action": "hide_creator"}
        assert client.post("/v1/events", json={"user_id": "victim", "events": [hide]}).status_code == 403
        # Its own user is fine.
        assert (
            client.post(
                "/v1/events", json={"user_id": "alice", "events": [watch(model.item_ids[0], 5)]}
            ).status_code
            == 200
        )
        assert client.post("/v1/recommend", json={"user_id": "alice", "k": 5}).status_code == 200
    after = service.post("/v1/recommend", json={"user_id": "victim", "k": 20}).json()
    assert after == before  # nothing the other user sent reached the victim's history


def test_debug_output_needs_admin_and_healthz_tells_counts_to_admins_only(as_, model):
    body = {"user_id": "victim", "k": 100, "debug": True, "filters": {"exclude_items": []}}
    assert as_("service").post("/v1/recommend", json=body).status_code == 403
    assert as_("alice").post("/v1/recommend", json={**body, "user_id": "alice"}).status_code == 403
    admin = as_("admin").post("/v1/recommend", json=body)
    assert admin.status_code == 200 and "filtered" in admin.json()
    assert as_(None).get("/healthz").json() == {"status": "ok"}
    assert as_("service").get("/healthz").json() == {"status": "ok"}
    assert as_("admin").get("/healthz").json()["events_stored"] >= 6


def test_a_foreign_host_header_gets_400(as_):
    client = as_("service")
    assert client.get("/v1/model").status_code == 200
    assert client.get("/v1/model", headers={"Host": "evil.example"}).status_code == 400


def test_binding_beyond_loopback_without_auth_or_host_list_is_refused(tiny_export, creds, tmp_path, capsys):
    base = ["serve", "--model-dir", tiny_export, "--brute-force", "--db", str(tmp_path / "e.sqlite")]
    assert main([*base, "--host", "0.0.0.0"]) == 2
    assert "refusing to bind 0.0.0.0 without authentication" in capsys.readouterr().err
    assert main([*base, "--host", "0.0.0.0", "--auth-keys", creds["keys"]]) == 2
    assert "--allowed-host" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "e.sqlite")  # refused before anything was made


def test_one_user_cannot_flood_the_store(as_, model):
    client = as_("service")
    batch = [watch(model.item_ids[i % 10], 10 + i) for i in range(1000)]
    assert client.post("/v1/events", json={"user_id": "flooder", "events": batch}).status_code == 200
    flood = client.post("/v1/events", json={"user_id": "flooder", "events": batch})
    assert flood.status_code == 429 and int(flood.headers["retry-after"]) >= 1
    # Another user is not held up by the flooder.
    assert client.post("/v1/events", json={"user_id": "calm", "events": batch[:3]}).status_code == 200
    health = as_("admin").get("/healthz").json()
    assert health["events_stored"] < 2000


def raw(client, path, text):
    return client.post(path, content=text.encode("utf-8"), headers={"content-type": "application/json"})


NOT_JSON_VALUES = {
    # The probe's 12 tries: NaN, +-Infinity and a lone surrogate in each kind of field.
    "k NaN": ("/v1/recommend", '{"user_id": "alice", "k": NaN}'),
    "k Infinity": ("/v1/recommend", '{"user_id": "alice", "k": Infinity}'),
    "k -Infinity": ("/v1/recommend", '{"user_id": "alice", "k": -Infinity}'),
    "debug NaN": ("/v1/recommend", '{"user_id": "alice", "debug": NaN}'),
    "user_id surrogate": ("/v1/recommend", '{"user_id": "\\ud800", "k": 3}'),
    "filter surrogate": ("/v1/recommend", '{"user_id": "alice", "filters": {"exclude_items": ["\\ud800"]}}'),
    "history NaN": ("/v1/recommend", '{"history": [{"item_id": "a", "timestamp": NaN, "action": "view"}]}'),
    "timestamp Infinity": (
        "/v1/events",
        '{"user_id": "alice", "events": [{"item_id": "a", "timestamp": Infinity, "action": "view"}]}',
    ),
    "watch_ms NaN": (
        "/v1/events",
        '{"user_id": "alice", "events": '
        '[{"item_id": "a", "timestamp": 5, "action": "view", "watch_ms": NaN}]}',
    ),
    "item surrogate": (
        "/v1/events",
        '{"user_id": "alice", "events": [{"item_id": "\\udfff", "timestamp": 5, "action": "view"}]}',
    ),
    "events user surrogate": (
        "/v1/events",
        '{"user_id": "\\ud800x", "events": [{"item_id": "a", "timestamp": 5, "action": "view"}]}',
    ),
    "extra key surrogate": ("/v1/recommend", '{"user_id": "alice", "\\ud800": 1}'),
    # Valid JSON, but PostgreSQL's text cannot hold it: refused by every store alike.
    "item NUL": (
        "/v1/events",
        '{"user_id": "alice", "events": [{"item_id": "a\\u0000b", "timestamp": 5, "action": "view"}]}',
    ),
}
LOOSE_TYPES = {
    "timestamp true": {"item_id": "a", "timestamp": True, "action": "view"},
    "timestamp string": {"item_id": "a", "timestamp": "1700000000", "action": "view"},
    "timestamp float": {"item_id": "a", "timestamp": 1.5, "action": "view"},
}


@pytest.mark.parametrize("kind", sorted(NOT_JSON_VALUES))
def test_nan_infinity_and_surrogates_get_422_not_500(as_, kind):
    path, text = NOT_JSON_VALUES[kind]
    response = raw(as_("admin"), path, text)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]  # a body that parses: where and what was refused


def test_numbers_and_booleans_must_be_json_numbers_and_booleans(as_):
    client = as_("alice")
    for kind, event in LOOSE_TYPES.items():
        response = client.post("/v1/events", json={"user_id": "alice", "events": [event]})
        assert response.status_code == 422, kind
    assert client.post("/v1/recommend", json={"user_id": "alice", "k": True}).status_code == 422
    assert client.post("/v1/recommend", json={"user_id": "alice", "debug": 0}).status_code == 422


def test_a_retried_request_is_stored_once(as_, server, model):
    client = as_("service")
    events = [watch(model.item_ids[i], 50 + i, event_id=f"e{i}") for i in range(3)]
    first = client.post("/v1/events", json={"user_id": "retrier", "events": events}).json()
    again = client.post("/v1/events", json={"user_id": "retrier", "events": events}).json()
    assert (first["accepted"], first["duplicates"]) == (3, 0)
    assert (again["accepted"], again["duplicates"]) == (3, 3)
    # The same event_id of another user is another event.
    other = client.post("/v1/events", json={"user_id": "retrier-2", "events": events[:1]}).json()
    assert other["duplicates"] == 0
    assert client.post("/v1/recommend", json={"user_id": "retrier", "k": 3}).json()["history_length"] == 3


def test_store_files_are_private(server, as_, model):
    as_("service").post("/v1/events", json={"user_id": "p", "events": [watch(model.item_ids[0], 1)]})
    db = server.log_path[: -len(".log")]
    for path in (db, db + "-wal", db + "-shm"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_keys_file_holds_hashes_only_and_is_private(creds):
    with open(creds["keys"]) as handle:
        text = handle.read()
    assert creds["service"] not in text and creds["admin"] not in text
    entries = {entry["name"]: entry for entry in json.loads(text)["keys"]}
    assert entries["alice-app"]["scope"] == "user" and entries["alice-app"]["user_id"] == "alice"
    for path in (creds["keys"], creds["signing"]):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
