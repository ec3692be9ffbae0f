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
