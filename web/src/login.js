// Login: the device's challenge, the digest response computed here, a session cookie back.
import { useState } from "preact/hooks";
import { ApiError, field, isapi } from "./api.js";
import { digestAuthorization } from "./crypto.js";
import { Field, html, retryText } from "./ui.js";

const LOGIN = "/ISAPI/Security/sessionLogin";

async function challenge() {
  const reply = await isapi("GET", `${LOGIN}/capabilities`);
  const offered = Array.from(reply.getElementsByTagNameNS("*", "algorithm"), (e) => e.textContent);
  return {
    realm: field(reply, "realm"),
    nonce: field(reply, "nonce"),
    opaque: field(reply, "opaque"),
    algorithm: offered.includes("SHA-256") ? "SHA-256" : offered[0],
  };
}

/** Log in; the session document (user, level, CSRF token) or an ApiError. */
export async function login(user, password) {
  for (let attempt = 0; ; attempt++) {
    const header = digestAuthorization(await challenge(), user, password, "POST", LOGIN);
    try {
      return await isapi("POST", LOGIN, undefined, { Authorization: header });
    } catch (error) {
      // A nonce that went stale between the two requests: once more with a fresh one.
      if (!(error instanceof ApiError && error.subStatus === "staleNonce" && attempt === 0)) throw error;
    }
  }
}

export function loginMessage(error) {
  if (!(error instanceof ApiError)) return `The device cannot be reached: ${error}`;
  if (error.subStatus === "userLocked") {
    const seconds = Number(error.extra.unlockTime || 0);
    return `Too many failed logins from this address: ${retryText(seconds)}.`;
  }
  if (error.subStatus === "unauthorized") return "Wrong user name or password.";
  return error.message;
}

export function Login({ onLogin, notice }) {
  const [user, setUser] = useState("admin");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      const session = await login(user, password);
      onLogin({
        user: field(session, "userName"),
        level: field(session, "userLevel"),
        csrf: field(session, "csrfToken"),
      });
    } catch (failure) {
      setError(loginMessage(failure));
      setPassword("");
    } finally {
      setBusy(false);
    }
  }

  return html`<main class="card" aria-labelledby="login-title">
    <h1 id="login-title">Log in</h1>
    ${notice && html`<p class="notice" role="status">${notice}</p>`}
    <form onSubmit=${submit}>
      <${Field} id="user" label="User name" autocomplete="username" value=${user}
        onInput=${(e) => setUser(e.currentTarget.value)} />
      <${Field} id="login-password" label="Password" type="password" autocomplete="current-password"
        value=${password} error=${error} autofocus
        onInput=${(e) => setPassword(e.currentTarget.value)} />
      <button type="submit" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
    </form>
  </main>`;
}
