"""Drives the real specklepy SDK against a running Tessera server.

Reads its inputs from the environment (set by the Rust test `specklepy::specklepy_works_unchanged`)
and exits non-zero with a message on the first broken promise.
"""

import os
import sys

from specklepy.api.client import SpeckleClient
from specklepy.logging.exceptions import SpeckleException

host = os.environ["TESSERA_HOST"]
pat = os.environ["TESSERA_PAT"]
revoked = os.environ["TESSERA_REVOKED_PAT"]
name = os.environ["TESSERA_USER_NAME"]
email = os.environ["TESSERA_USER_EMAIL"]
user_id = os.environ["TESSERA_USER_ID"]


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


# Exactly as Speckle's documentation tells users to do it.
client = SpeckleClient(host=host, use_ssl=False)
check(client.url == f"http://{host}", f"client.url is {client.url}")
client.authenticate_with_token(pat)
check(client.account.token == pat, "the account carries the token")
check(client.account.userInfo.name == name, f"account.userInfo.name is {client.account.userInfo.name!r}")
check(client.account.userInfo.email == email, f"account.userInfo.email is {client.account.userInfo.email!r}")
check(client.account.userInfo.id == user_id, "account.userInfo.id")

user = client.active_user.get()
check(user is not None, "active_user.get() returned None")
check(user.id == user_id, f"user.id is {user.id!r}")
check(user.name == name, f"user.name is {user.name!r}")
check(user.email == email, f"user.email is {user.email!r}")
check(user.role == "server:admin", f"user.role is {user.role!r}")

server = client.server.get()
check(bool(server.name), "server.get().name is empty")
check(server.version and server.version.count(".") == 2, f"server version {server.version!r}")
check(client.account.serverInfo.url == f"http://{host}", "account.serverInfo.url")
scope_names = [s["name"] if isinstance(s, dict) else s.name for s in server.scopes]
check("streams:read" in scope_names, f"serverInfo.scopes is {scope_names}")
check(client.account.serverInfo.name == server.name, "account.serverInfo.name")

version = client.server.version()
check(isinstance(version, tuple) and all(isinstance(p, int) for p in version), f"server.version() is {version!r}")

other = client.other_user.get(user_id)
check(other is not None and other.name == name, "other_user.get(id)")
check(client.other_user.get("AnIdThatDoesntExist") is None, "other_user.get(unknown) is None")

# A revoked token makes authentication fail loudly.
stale = SpeckleClient(host=host, use_ssl=False)
try:
    stale.authenticate_with_token(revoked)
except SpeckleException as e:
    check("403" in str(e), f"the revoked-token error mentions 403: {e}")
else:
    check(False, "authenticate_with_token with a revoked PAT did not raise SpeckleException")

print("specklepy: all checks passed")
