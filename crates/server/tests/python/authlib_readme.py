# README's "Sign in with Tessera" example, run as written (Authlib + Flask) against a Tessera
# server: TESSERA_URL is the server, README the file the example is taken from. The example's
# app is driven with Flask's test client; the person's browser is a requests session that signs
# in and allows the app on Tessera's pages. Then Authlib's plain OAuth 2 client introspects and
# revokes a token of its own.
import importlib.util
import os
import re
import sys
from urllib.parse import parse_qs, urlparse

import requests

base = os.environ["TESSERA_URL"]
readme = open(os.environ["README"]).read()
example = readme.split("### Sign in with Tessera (OpenID Connect)")[1]
example = example.split("```python")[1].split("```")[0]

browser = requests.Session()
# Python's cookie jar keeps the Secure cookies of plain-http loopback but never sends them back
# (browsers treat loopback as a secure context): send them as a browser would.
plain_request = browser.request


def request(method, url, **kw):
    headers = kw.pop("headers", None) or {}
    headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    return plain_request(method, url, headers=headers, **kw)


browser.request = request


def form_csrf(page):
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


email = "ada.%s@example.org" % os.urandom(3).hex()
password = "a long enough password"
r = browser.post(
    f"{base}/auth/local/register?challenge=c1",
    json={"email": email, "password": password, "name": "Ada Authlib"},
    allow_redirects=False,
)
code = parse_qs(urlparse(r.headers["location"]).query)["access_code"][0]
token = requests.post(
    f"{base}/auth/token",
    json={"appId": "spklwebapp", "appSecret": "spklwebapp", "accessCode": code, "challenge": "c1"},
).json()["token"]


def graphql(query, variables=None):
    answer = requests.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert "errors" not in answer, answer
    return answer["data"]


app_id = graphql(
    'mutation { appCreate(app: {name: "Flask demo", description: "README example", '
    'redirectUrl: "http://127.0.0.1:5000/callback", '
    'scopes: ["profile:read", "profile:email"], confidential: true}) }'
)["appCreate"]
secret = graphql("query($id: String!) { app(id: $id) { secret } }", {"id": app_id})["app"]["secret"]

source = (
    example.replace("<App ID>", app_id)
    .replace("<App Secret>", secret)
    .replace("http://localhost:3000", base)
)
path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tessera_readme_{os.getpid()}.py")
with open(path, "w") as f:
    f.write(source)
spec = importlib.util.spec_from_file_location("readme_example", path)
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)
app = demo.app.test_client()
here = "http://127.0.0.1:5000"

home = app.get("/", base_url=here).get_data(as_text=True)
assert "Sign in with Tessera" in home, home
authorize = app.get("/login", base_url=here).headers["Location"]
assert authorize.startswith(f"{base}/oauth/authorize?"), authorize

# The person signs in on Tessera and allows the app.
page = browser.get(f"{base}/authn/login").text
r = browser.post(
    f"{base}/authn/login",
    data={"csrf": form_csrf(page), "email": email, "password": password, "next": "/"},
    allow_redirects=False,
)
assert r.status_code == 303, r.status_code
page = browser.get(authorize).text
assert "Flask demo wants to access your account" in page
r = browser.post(authorize, data={"csrf": form_csrf(page), "decision": "allow"}, allow_redirects=False)
back = r.headers["location"]
assert back.startswith(f"{here}/callback?"), back

r = app.get(back[len(here):], base_url=here)
assert r.status_code == 302, r.get_data(as_text=True)
home = app.get("/", base_url=here).get_data(as_text=True)
assert home == "Hello Ada Authlib", home
os.remove(path)

# The same library's OAuth 2 client: the code flow with PKCE, then RFC 7662 introspection and
# RFC 7009 revocation (Authlib wants https unless told that a plain-http test server is fine).
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402

client = OAuth2Session(
    app_id,
    secret,
    scope="openid profile",
    redirect_uri=f"{here}/callback",
    code_challenge_method="S256",
)
verifier = generate_token(64)
uri, state = client.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
page = browser.get(uri).text
r = browser.post(uri, data={"csrf": form_csrf(page), "decision": "allow"}, allow_redirects=False)
tokens = client.fetch_token(
    f"{base}/oauth/token", authorization_response=r.headers["location"], code_verifier=verifier
)
assert tokens["token_type"] == "Bearer" and "id_token" in tokens, tokens
seen = client.introspect_token(f"{base}/oauth/introspect", token=tokens["access_token"]).json()
assert seen["active"] is True and seen["client_id"] == app_id, seen
r = client.revoke_token(
    f"{base}/oauth/revoke", token=tokens["refresh_token"], token_type_hint="refresh_token"
)
assert r.status_code == 200, r.status_code
seen = client.introspect_token(f"{base}/oauth/introspect", token=tokens["access_token"]).json()
assert seen == {"active": False}, seen
print("all checks passed")
