// A third-party app's side of Speckle's OAuth2 + PKCE guide, as a browser app would write it:
// make a verifier, send its S256 challenge to the authorization page, take the access code from
// the callback, trade it and the verifier for a token, then call the API with the token.

const VERIFIER_KEY = 'sample_app_pkce_verifier';
const TOKEN_KEY = 'sample_app_token';

function toBase64Url(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

async function makePkcePair() {
  const random = crypto.getRandomValues(new Uint8Array(32));
  const verifier = toBase64Url(random); // 43 characters
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return { verifier, challenge: toBase64Url(new Uint8Array(digest)) };
}

async function startSignIn(serverUrl, appId) {
  const { verifier, challenge } = await makePkcePair();
  sessionStorage.setItem(VERIFIER_KEY, verifier);
  // The path form of the docs: the method rides after the challenge with `&`.
  window.location.href = `${serverUrl}/authn/verify/${appId}/${challenge}&code_challenge_method=S256`;
}

function accessCodeFromUrl() {
  const code = new URLSearchParams(window.location.search).get('access_code');
  if (!code) throw new Error('the callback URL carries no access_code');
  return code;
}

async function finishSignIn(serverUrl, appId) {
  const accessCode = accessCodeFromUrl();
  const codeVerifier = sessionStorage.getItem(VERIFIER_KEY);
  if (!codeVerifier) throw new Error('no code verifier in this tab');
  const res = await fetch(`${serverUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ appId, accessCode, codeVerifier }),
  });
  if (!res.ok) throw new Error(`token exchange failed with HTTP ${res.status}`);
  const { token } = await res.json();
  sessionStorage.removeItem(VERIFIER_KEY);
  sessionStorage.setItem(TOKEN_KEY, token);
  return token;
}

async function graphql(serverUrl, query) {
  const res = await fetch(`${serverUrl}/graphql`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`,
    },
    body: JSON.stringify({ query }),
  });
  return res.json();
}
