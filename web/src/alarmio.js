// Configuration → Events → Alarm input / Alarm output: the ports of System/IO, their state, the
// relay's manual trigger, and (for an input) its arming schedule and linkage (trigger IO-n).
import { useEffect, useState } from "preact/hooks";
import { isapi, xmlDocument } from "./api.js";
import { Chooser, IsapiForm, setText, textAt, useIsapiForm } from "./form.js";
import { EventRules } from "./events.js";
import { html } from "./ui.js";

const IO = "/ISAPI/System/IO";
const STATE_MS = 1000;

/** A port's state (active / inactive) as `…/status` says it, read every second. */
function usePortState(path, version = 0) {
  const [state, setState] = useState("");
  useEffect(() => {
    let alive = true;
    const read = () =>
      isapi("GET", path)
        .then((root) => alive && setState(textAt(root, "ioState")))
        .catch(() => alive && setState("unknown"));
    read();
    const timer = setInterval(read, STATE_MS);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [path, version]);
  return state;
}

function PortState({ id, path, version }) {
  const state = usePortState(path, version);
  return html`<p class="port-state">State: <strong id=${id} data-state=${state} aria-live="polite">${state || "…"}</strong></p>`;
}

// -- inputs ----------------------------------------------------------------------------------
const INPUT_FIELDS = [
  { key: "inputName", path: "name", label: "Name" },
  { key: "inputEnabled", path: "enabled", label: "Enable this alarm input", type: "checkbox" },
  // Hikvision's `triggering` names the contact's kind: high is NO, low is NC (isapi_io.py).
  { key: "triggering", label: "Alarm type", type: "select",
    options: [["high", "Normally open (NO)"], ["low", "Normally closed (NC)"]] },
  { key: "debounceTime", label: "Debounce (milliseconds)", type: "number", hint: "10 to 10000" },
];

function InputPage({ id }) {
  const form = useIsapiForm(`${IO}/inputs/${id}`, INPUT_FIELDS);
  return html`<${PortState} id="input-state" path=${`${IO}/inputs/${id}/status`} />
    <${IsapiForm} form=${form} label="Alarm input" />
    <${EventRules} trigger=${`IO-${id}`} schedule=${`/ISAPI/Event/schedules/inputs/IO_${id}`} />`;
}

export function AlarmInputPage() {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Alarm input</h2>
    <${Chooser} id="input" label="Alarm input" list=${`${IO}/inputs`}
      name=${(item) => `Input ${textAt(item, "id")}${textAt(item, "name") ? ` (${textAt(item, "name")})` : ""}`}>
      ${(id) => html`<${InputPage} key=${id} id=${id} />`}
    <//>
  </section>`;
}

// -- outputs ---------------------------------------------------------------------------------
const POWER = "PowerOnState";
const OTHER_LEVEL = { high: "low", low: "high" };
const OUTPUT_FIELDS = [
  { key: "outputName", path: "name", label: "Name" },
  { key: "defaultState", path: `${POWER}/defaultState`, label: "Idle level", type: "select",
    options: [["low", "Low"], ["high", "High"]] },
  // The device's outputState is `pulse` (held for the hold time) or the level a latched relay
  // goes to, which is always the other one than idle: the page asks "hold or latch" only.
  { key: "outputMode", path: `${POWER}/outputState`, label: "When triggered", type: "select",
    options: [["pulse", "Hold for the hold time"], ["latch", "Latch until cleared"]],
    read: (root) => (textAt(root, `${POWER}/outputState`) === "pulse" ? "pulse" : "latch"),
    write: (root, value, values) => {
      const level = value === "pulse" ? "pulse" : OTHER_LEVEL[values.defaultState] || "high";
      setText(root, `${POWER}/outputState`, level);
    },
    aliases: ["outputState"] },
  { key: "pulseDuration", path: `${POWER}/pulseDuration`, label: "Hold time (seconds)", type: "number",
    scale: 1000, hint: "5 to 600", show: (values) => values.outputMode === "pulse" },
];

function ManualTrigger({ id, onDone }) {
  const [error, setError] = useState("");
  const send = (level) => {
    const body = xmlDocument("IOPortData", { outputState: level });
    isapi("PUT", `${IO}/outputs/${id}/trigger`, body)
      .then(() => setError(""))
      .catch((failure) => setError(failure.message))
      .finally(onDone);
  };
  return html`<div class="actions io-actions">
      <button type="button" onClick=${() => send("high")}>Trigger output</button>
      <button type="button" class="plain" onClick=${() => send("low")}>Clear output</button>
    </div>
    ${error && html`<p class="field-error" role="alert">${error}</p>`}`;
}

function OutputPage({ id }) {
  const form = useIsapiForm(`${IO}/outputs/${id}`, OUTPUT_FIELDS);
  const [version, setVersion] = useState(0);
  return html`<${PortState} id="output-state" path=${`${IO}/outputs/${id}/status`} version=${version} />
    <${ManualTrigger} id=${id} onDone=${() => setVersion((n) => n + 1)} />
    <${IsapiForm} form=${form} label="Alarm output" />`;
}

export function AlarmOutputPage() {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Alarm output</h2>
    <${Chooser} id="output" label="Alarm output" list=${`${IO}/outputs`}
      name=${(item) => `Output ${textAt(item, "id")}${textAt(item, "name") ? ` (${textAt(item, "name")})` : ""}`}>
      ${(id) => html`<${OutputPage} key=${id} id=${id} />`}
    <//>
  </section>`;
}
