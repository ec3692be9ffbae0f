// Vigil's on-device page: activation on a factory-state device, login, then the app shell.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Activation } from "./activation.js";
import { ApiError, field, isapi, setSession } from "./api.js";
import { Login } from "./login.js";
import { Shell } from "./shell.js";
import { html } from "./ui.js";
import "./style.css";

async function firstPhase() {
  const status = await isapi("GET", "/SDK/activateStatus");
  if (field(status, "Activated") !== "true") return { phase: "activate" };
  try {
    const session = await isapi("GET", "/ISAPI/Security/sessionLogin");
    return { phase: "shell", session: sessionOf(session) };
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return { phase: "login" };
    throw error;
  }
}

function sessionOf(doc) {
  return { user: field(doc, "userName"), level: field(doc, "userLevel"), csrf: field(doc, "csrfToken") };
}

function App() {
  const [state, setState] = useState({ phase: "loading" });
  const toLogin = (notice) => {
    setSession("");
    setState({ phase: "login", notice });
  };
  useEffect(() => {
    setSession("", () => toLogin("Your session has ended: please log in again."));
    firstPhase()
      .then((next) => {
        if (next.session) setSession(next.session.csrf);
        setState(next);
      })
      .catch((error) => setState({ phase: "error", message: error.message }));
  }, []);

  async function logout() {
    try {
      await isapi("PUT", "/ISAPI/Security/sessionLogout");
    } finally {
      toLogin("You have logged out.");
    }
  }

  switch (state.phase) {
    case "activate":
      return html`<${Activation} onActivated=${() => toLogin("The device is activated: log in as admin.")} />`;
    case "login":
      return html`<${Login} notice=${state.notice} onLogin=${(session) => {
        setSession(session.csrf);
        setState({ phase: "shell", session });
      }} />`;
    case "shell":
      return html`<${Shell} session=${state.session} onLogout=${logout} />`;
    case "error":
      return html`<main class="card"><h1>The device cannot be reached</h1><p role="alert">${state.message}</p></main>`;
    default:
      return html`<p class="loading">Loading…</p>`;
  }
}

render(html`<${App} />`, document.getElementById("app"));
