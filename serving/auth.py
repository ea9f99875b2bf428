"""Who is asking the service, and for which users they may act.

Two kinds of credentials, both sent as `Authorization: Bearer <credential>`:

- **API keys** (`ntr_...`, 256 random bits), kept in a keys file as SHA-256 hashes only (a key
  is shown once, when `ntr auth add-key` makes it). A key has a scope: `admin` (any user, and
  `debug` output), `service` (any user: what a backend uses) or `user` (its own `user_id` only).
- **User tokens**: JWTs (PyJWT, EdDSA) that a backend issues to one user's client with
  `ntr auth token`. They are signed with an Ed25519 private key the backend keeps; the keys
  file holds only the public half, so the service can check tokens but never make one. A token
  names its user (`sub`), the audience `ntr` and an expiry.

The keys file is JSON, written 0600 and replaced atomically:

    {"version": 1,
     "keys": [{"name": "backend", "sha256": "<hex>", "scope": "service", "user_id": null,
               "created": "2026-12-04T21:00:00Z"}],
     "token_public_key": "-----BEGIN PUBLIC KEY-----..." or null}

SHA-256 (not a password hash) is the right tool here: the keys are random, not guessable, so
nothing is gained by a slow hash, and a fast one keeps a request's check near a microsecond.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import secrets
import tempfile

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SCOPES = ("admin", "service", "user")
KEY_PREFIX = "ntr_"
AUDIENCE = "ntr"
ALGORITHM = "EdDSA"


@dataclasses.dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Attributes:
      name: the key's name, or `token:<user_id>` for a user token (rate limits key on it).
      scope: one of `SCOPES`.
      user_id: the only user a `user`-scoped caller may act for; None for the other scopes.
    """

    name: str
    scope: str
    user_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    def may_act_for(self, user_id: str) -> bool:
        """True when this caller may read and write `user_id`'s data."""
        return self.scope in ("admin", "service") or user_id == self.user_id


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class Authenticator:
    """Turns a bearer credential into a `Principal`, or None when it proves nothing."""

    def __init__(self, keys: list[dict], token_public_key: str | None = None):
        """Args:
        keys: the keys file's entries (name, sha256, scope, user_id).
        token_public_key: PEM of the Ed25519 key user tokens are checked with; None: no tokens.
        """
        self._by_digest = {}
        for entry in keys:
            _check_entry(entry)
            self._by_digest[entry["sha256"]] = Principal(entry["name"], entry["scope"], entry.get("user_id"))
        self._public_key = (
            serialization.load_pem_public_key(token_public_key.encode()) if token_public_key else None
        )

    @classmethod
    def from_file(cls, path: str) -> Authenticator:
        """Loads a keys file (see the module doc), with errors that say how to make one."""
        data = read_keys_file(path)
        return cls(data["keys"], data.get("token_public_key"))

    @property
    def accepts_tokens(self) -> bool:
        return self._public_key is not None

    def authenticate(self, credential: str) -> Principal | None:
        if credential.startswith(KEY_PREFIX):
            return self._by_digest.get(_digest(credential))
        if self._public_key is None or credential.count(".") != 2:
            return None
        try:
            claims = jwt.decode(
                credential,
                self._public_key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        user_id = claims["sub"]
        if not isinstance(user_id, str) or not user_id:
            return None
        return Principal(f"token:{user_id}", "user", user_id)


def _check_entry(entry: dict) -> None:
    scope, user_id = entry.get("scope"), entry.get("user_id")
    if scope not in SCOPES:
        raise ValueError(f"key {entry.get('name')!r} has scope {scope!r}; use one of {SCOPES}.")
    if (scope == "user") != bool(user_id):
        raise ValueError(
            f"key {entry.get('name')!r}: a `user` key needs a user_id and the other scopes take none."
        )
    digest = entry.get("sha256", "")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"key {entry.get('name')!r} has no valid sha256; make keys with `ntr auth add-key`.")


def read_keys_file(path: str) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No keys file at {path!r}: make one with `ntr auth add-key --keys {path} --name NAME "
            "--scope service`."
        )
    with open(path) as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not JSON ({error}); it is written by `ntr auth`.") from error
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("keys"), list):
        raise ValueError(f"{path} is not an ntr keys file (version 1 with a `keys` list).")
    return data


def write_private(path: str, text: str) -> None:
    """Writes `text` to `path` readable by its owner only (0600), replacing it atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ntr-auth-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _load_or_new(path: str) -> dict:
    return (
        read_keys_file(path) if os.path.exists(path) else {"version": 1, "keys": [], "token_public_key": None}
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_key(path: str, name: str, scope: str, user_id: str | None = None) -> str:
    """Adds a new API key to the keys file at `path` (made if missing); returns the key, which
    is stored nowhere in the clear: hand it to its owner now."""
    data = _load_or_new(path)
    if any(entry["name"] == name for entry in data["keys"]):
        raise ValueError(f"{path} already has a key named {name!r}; pick another name or remove it first.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    entry = {"name": name, "sha256": _digest(key), "scope": scope, "user_id": user_id, "created": _now()}
    _check_entry(entry)
    data["keys"].append(entry)
    write_private(path, json.dumps(data, indent=1) + "\n")
    return key


def remove_key(path: str, name: str) -> None:
    """Revokes the key named `name` (takes effect when the service restarts)."""
    data = read_keys_file(path)
    kept = [entry for entry in data["keys"] if entry["name"] != name]
    if len(kept) == len(data["keys"]):
        raise ValueError(f"{path} has no key named {name!r}.")
    data["keys"] = kept
    write_private(path, json.dumps(data, indent=1) + "\n")


def init_signing(path: str, private_key_path: str) -> None:
    """Makes an Ed25519 key pair for user tokens: the private half to `private_key_path` (0600;
    it stays with whoever issues tokens), the public half into the keys file at `path`."""
    if os.path.exists(private_key_path):
        raise FileExistsError(f"{private_key_path} exists; remove it first to make a new signing key.")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_private(private_key_path, pem.decode())
    data = _load_or_new(path)
    data["token_public_key"] = public.decode()
    write_private(path, json.dumps(data, indent=1) + "\n")


def issue_token(private_key_path: str, user_id: str, ttl_seconds: int, now: float) -> str:
    """A user token for `user_id`, valid for `ttl_seconds` from `now` (unix seconds)."""
    if not user_id:
        raise ValueError("a user token needs a user id.")
    if ttl_seconds < 1:
        raise ValueError(f"ttl must be >= 1 second, got {ttl_seconds}.")
    with open(private_key_path, "rb") as handle:
        private = serialization.load_pem_private_key(handle.read(), password=None)
    claims = {"sub": user_id, "aud": AUDIENCE, "iat": int(now), "exp": int(now) + int(ttl_seconds)}
    return jwt.encode(claims, private, algorithm=ALGORITHM)
