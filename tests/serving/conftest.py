"""Serving test set-up: the tiny `ntr` export and its index, a real PostgreSQL, event helpers."""

import pytest


def watch(item: str, ts: int, event_id: str | None = None) -> dict:
    """A fully watched event as the service takes it (with the client's `event_id` if given)."""
    event = {
        "item_id": item,
        "timestamp": ts,
        "action": "complete",
        "watch_ms": 50_000,
        "duration_ms": 50_000,
    }
    return event if event_id is None else {**event, "event_id": event_id}


@pytest.fixture(scope="session")
def tiny_export(tiny_model) -> str:
    """models/ntr of a tiny model trained for 2 epochs on the tiny world (exported)."""
    return tiny_model("ntr")


@pytest.fixture(scope="session")
def tiny_index(tiny_export, tiny_data, tmp_path_factory) -> str:
    """`ntr index` of the tiny export (brute force by the size rule, with tf_serving/)."""
    from ntr.cli.main import main  # noqa: PLC0415

    index_dir = str(tmp_path_factory.mktemp("tiny-index"))
    code = main(
        ["index", "--model-dir", tiny_export, "--data-dir", tiny_data, "--index-dir", index_dir, "--k", "20"]
    )
    assert code == 0
    return index_dir


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server (pgserver's bundled binaries, from the package index) on a Unix
    socket in a temporary folder, stopped at the end of the session."""
    import pgserver  # noqa: PLC0415

    server = pgserver.get_server(str(tmp_path_factory.mktemp("postgres")), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def postgres_url(postgres, request):
    """A database of its own for one test (dropped afterwards), as a URL."""
    import psycopg  # noqa: PLC0415

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    with psycopg.connect(postgres.get_uri(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres.get_uri(name)
    with psycopg.connect(postgres.get_uri(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
