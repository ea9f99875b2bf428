"""`ntr auth add-key|remove-key|init-signing|token`: credentials for `ntr serve --auth-keys`."""

from __future__ import annotations

import argparse
import os
import time

HELP = (
    "add-key: make an API key (printed once; only its SHA-256 is kept in the keys file) with scope "
    "admin, service (may act for any user) or user (--user-id only); remove-key: revoke one; "
    "init-signing: make the Ed25519 key pair user tokens are signed with (public half into the keys "
    "file); token: issue a user token (JWT) for --user-id with the private key."
)
ENV_KEYS = "NTR_AUTH_KEYS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = ("add-key", "remove-key", "init-signing", "token")
    parser.add_argument("action", choices=actions, help="what to do")
    parser.add_argument(
        "--keys", help=f"keys file (default ${ENV_KEYS}, else WORKDIR/auth/keys.json); written 0600"
    )
    parser.add_argument("--name", help="add-key / remove-key: the key's name (unique)")
    parser.add_argument("--scope", choices=("admin", "service", "user"), help="add-key: what the key may do")
    parser.add_argument("--user-id", help="add-key --scope user / token: the one user it may act for")
    parser.add_argument(
        "--signing-key", help="init-signing / token: the private key (default WORKDIR/auth/signing.pem)"
    )
    parser.add_argument("--ttl", type=int, default=3600, help="token: seconds until it expires")


def keys_path(args: argparse.Namespace) -> str:
    return args.keys or os.environ.get(ENV_KEYS) or os.path.join(args.workdir, "auth", "keys.json")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ntr.serving import auth  # noqa: PLC0415

    keys = keys_path(args)
    signing = args.signing_key or os.path.join(args.workdir, "auth", "signing.pem")
    if args.action in ("add-key", "remove-key") and not args.name:
        raise ValueError(f"{args.action} needs --name NAME.")
    if args.action == "add-key":
        if args.scope is None:
            raise ValueError("add-key needs --scope admin|service|user.")
        key = auth.add_key(keys, args.name, args.scope, args.user_id)
        who = f" for {args.user_id}" if args.user_id else ""
        print(f"key {args.name!r} ({args.scope}{who}) added to {keys}.")
        print("It is shown once and stored only as a hash; send it as `Authorization: Bearer <key>`:")
        print(key)
    elif args.action == "remove-key":
        auth.remove_key(keys, args.name)
        print(f"key {args.name!r} removed from {keys}; restart `ntr serve` for it to take effect.")
    elif args.action == "init-signing":
        auth.init_signing(keys, signing)
        print(f"signing key written to {signing} (keep it with whoever issues tokens); public key in {keys}.")
    else:
        if not args.user_id:
            raise ValueError("token needs --user-id USER.")
        print(auth.issue_token(signing, args.user_id, args.ttl, time.time()))
    return 0
