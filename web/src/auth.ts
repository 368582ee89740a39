// Logging in with the built-in OpenID Connect issuer: the authorization code flow with PKCE (RFC 7636).
// The provider and its public client come from GET /credentials/oidc, the endpoints from the issuer's
// discovery document. The access token is kept in sessionStorage: it ends with the tab.
import { call } from "./api";

const TOKEN_KEY = "terracube.token";
const PENDING_KEY = "terracube.login";

interface Provider {
  id: string;
  issuer: string;
  scopes: string[];
  default_clients?: { id: string; grant_types: string[]; redirect_urls?: string[] }[];
}

export interface Session {
  provider: string;
  token: string;
  expires: number; // ms since the epoch
}

/** The page's own address without query or fragment: where the issuer sends the person back. */
export function redirectUri(): string {
  const url = new URL(window.location.href);
  return `${url.origin}${url.pathname}`;
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  bytes.forEach((b) => (text += String.fromCharCode(b)));
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function discover(): Promise<{ provider: Provider; client: string; authorize: string; token: string }> {
  const { providers } = await call<{ providers: Provider[] }>("/credentials/oidc");
  const provider = providers.find((p) => p.default_clients?.some((c) => c.grant_types.includes("authorization_code+pkce")));
  if (!provider) throw new Error("The server offers no OpenID Connect provider a web page can log in with.");
  const client = provider.default_clients!.find((c) => c.grant_types.includes("authorization_code+pkce"))!.id;
  const config = await call<{ authorization_endpoint: string; token_endpoint: string }>(
    `${provider.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`,
  );
  return { provider, client, authorize: config.authorization_endpoint, token: config.token_endpoint };
}

/** Off to the issuer's login page; the person comes back to this page with ?code=...&state=... */
export async function logIn(): Promise<void> {
  if (!crypto.subtle) throw new Error("This page is not served over HTTPS (or from localhost), so the browser cannot log in securely.");
  const { provider, client, authorize } = await discover();
  const verifier = randomString(48);
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const state = randomString(16);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, provider: provider.id }));
  const scopes = provider.scopes.includes("openid") ? ["openid"] : provider.scopes.slice(0, 1);
  const query = new URLSearchParams({
    response_type: "code",
    client_id: client,
    redirect_uri: redirectUri(),
    scope: scopes.join(" "),
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  window.location.assign(`${authorize}?${query}`);
}

/** Back from the issuer: trade the code for a token. Null when this page load is no login's return. */
export async function finishLogIn(): Promise<Session | null> {
  const params = new URLSearchParams(window.location.search);
  if (!params.has("code") && !params.has("error")) return null;
  window.history.replaceState(null, "", redirectUri()); // the code is used once: not in the address bar, not in history
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "null");
  sessionStorage.removeItem(PENDING_KEY);
  if (params.has("error")) throw new Error(`The login did not succeed: ${params.get("error_description") ?? params.get("error")}.`);
  if (!pending || pending.state !== params.get("state")) throw new Error("This login answer does not belong to a login started here; log in again.");
  const { client, token } = await discover();
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code: params.get("code")!,
    redirect_uri: redirectUri(),
    client_id: client,
    code_verifier: pending.verifier,
  });
  const response = await fetch(token, { method: "POST", body, headers: { Accept: "application/json" } });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    throw new Error(`The login did not succeed: ${answer.error_description ?? answer.error ?? response.statusText}.`);
  }
  const session: Session = { provider: pending.provider, token: answer.access_token, expires: Date.now() + 1000 * (answer.expires_in ?? 3600) };
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
  return session;
}

/** The token of this tab's login, if it is still valid. */
export function storedSession(): Session | null {
  const session: Session | null = JSON.parse(sessionStorage.getItem(TOKEN_KEY) ?? "null");
  if (!session || session.expires < Date.now() + 30_000) return null;
  return session;
}

export function logOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}
