// The factory-state page: the admin's first password, checked against the rule as it is typed,
// sealed to the device's key and sent to /ISAPI/System/activate.
import { useState } from "preact/hooks";
import { ApiError, field, isapi, xmlDocument } from "./api.js";
import { sealSecret } from "./crypto.js";
import { passwordRules } from "./password.js";
import { Field, RuleList, html } from "./ui.js";

const USER = "admin";

async function activate(password) {
  const challenge = await isapi("GET", "/ISAPI/Security/challenge");
  const sealed = sealSecret(field(challenge, "publicKey"), field(challenge, "challenge"), password);
  await isapi("PUT", "/ISAPI/System/activate", xmlDocument("ActivateInfo", { sealedPassword: sealed }));
}

export function Activation({ onActivated }) {
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const rules = passwordRules(USER, password);

  async function submit(event) {
    event.preventDefault();
    if (!rules.every((rule) => rule.ok)) {
      setErrors({ password: "The password does not meet the rule below." });
      return;
    }
    if (confirm !== password) {
      setErrors({ confirm: "The two passwords differ." });
      return;
    }
    setBusy(true);
    setErrors({});
    try {
      await activate(password);
      onActivated();
    } catch (error) {
      const message = error instanceof ApiError ? error.message : String(error);
      setErrors({ password: `The device refused: ${message}` });
    } finally {
      setBusy(false);
    }
  }

  return html`<main class="card" aria-labelledby="activate-title">
    <h1 id="activate-title">Activate this device</h1>
    <p>This device has no password yet. Choose the password of the <b>${USER}</b> user.</p>
    <form onSubmit=${submit} novalidate>
      <${Field} id="password" label="New password" type="password" autocomplete="new-password"
        value=${password} error=${errors.password} autofocus
        onInput=${(e) => setPassword(e.currentTarget.value)}
        hint=${html`<${RuleList} rules=${rules} />`} />
      <${Field} id="confirm" label="Confirm password" type="password" autocomplete="new-password"
        value=${confirm} error=${errors.confirm}
        onInput=${(e) => setConfirm(e.currentTarget.value)} />
      <button type="submit" disabled=${busy}>${busy ? "Activating…" : "Activate"}</button>
    </form>
  </main>`;
}
