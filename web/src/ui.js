// Shared pieces of the page: the htm binding and a labelled field whose error sits next to it.
import { h } from "preact";
import htm from "htm";

export const html = htm.bind(h);

/** A labelled input; `error` (the device's or the page's) is shown under it and announced. */
export function Field({ id, label, error, hint, ...input }) {
  const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <input id=${id} name=${id} aria-invalid=${error ? "true" : "false"}
      aria-describedby=${described || undefined} ...${input} />
    ${hint}
    ${error && html`<p id=${`${id}-error`} class="field-error" role="alert">${error}</p>`}
  </div>`;
}

/** "try again in 30 minutes (at 14:05)" for a lock of `seconds`. */
export function retryText(seconds) {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  const at = new Date(Date.now() + seconds * 1000);
  const clock = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return `try again in ${minutes} minute${minutes === 1 ? "" : "s"} (at ${clock})`;
}

/** The password rule's items (password.js), each marked met or not as the user types. */
export function RuleList({ id = "password-hint", rules }) {
  return html`<ul id=${id} class="rules" aria-live="polite">
    ${rules.map(
      (rule) => html`<li class=${rule.ok ? "ok" : "bad"} data-rule=${rule.id}>
        <span aria-hidden="true">${rule.ok ? "✓" : "✗"}</span>
        ${rule.text}<span class="sr-only">${rule.ok ? " (met)" : " (not met)"}</span>
      </li>`,
    )}
  </ul>`;
}

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Hand `blob` to the browser as a download called `name`. */
export function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

/** A labelled progress bar with its percentage written next to it (format, upgrade). */
export function Progress({ id, label, percent }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <div class="progress-line">
      <progress id=${id} max="100" value=${percent}>${percent} %</progress>
      <span aria-hidden="true">${percent} %</span>
    </div>
  </div>`;
}

/** A table's header row of column names. */
export function TableHead({ columns }) {
  return html`<thead><tr>${columns.map((name) => html`<th scope="col">${name}</th>`)}</tr></thead>`;
}
