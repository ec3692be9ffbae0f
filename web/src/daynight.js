// Configuration → Image → Day/Night: the IR-cut filter's mode (`…/IrcutFilter`: day, night, auto
// by the light sensor with its sensitivity and delay, or a daily schedule), the state it is in now
// (`…/IrcutFilter/status`, read again every few seconds) and, on a board with one, whether the IR
// illuminator lights at night (`…/supplementLight`).
import { useEffect, useState } from "preact/hooks";
import { isapi } from "./api.js";
import { IsapiForm, setText, textAt, useIsapiForm } from "./form.js";
import { html } from "./ui.js";

const PATH = "/ISAPI/Image/channels/1/IrcutFilter";
const STATUS = `${PATH}/status`;
const LIGHT = "/ISAPI/Image/channels/1/supplementLight";
const STATUS_MS = 3000; // the light reading changes slowly; every 3 s keeps the page current

const MODES = [
  ["day", "Day (colour, IR-cut filter in)"],
  ["night", "Night (black and white)"],
  ["auto", "Auto (by the light sensor)"],
  ["schedule", "Schedule"],
];

/** A schedule time: the document's HH:MM:SS shown as HH:MM (the device keeps whole minutes). */
function timeField(key, label, path) {
  return {
    key,
    label,
    path,
    type: "time",
    aliases: ["TimeRange"],
    read: (root) => textAt(root, path).slice(0, 5),
    write: (root, value) => setText(root, path, value.length === 5 ? `${value}:00` : value),
    show: (values) => values.mode === "schedule",
  };
}

const auto = (values) => values.mode === "auto";
const FIELDS = [
  { key: "mode", label: "Day/night mode", path: "IrcutFilterType", type: "select", options: MODES },
  {
    key: "sensitivity",
    label: "Sensitivity",
    path: "nightToDayFilterLevel",
    type: "number",
    hint: "0 to 7: higher switches to night in more light",
    show: auto,
  },
  {
    key: "delay",
    label: "Delay (s)",
    path: "nightToDayFilterTime",
    type: "number",
    hint: "5 to 120: how long the light must stay past the threshold",
    show: auto,
  },
  timeField("dayStart", "Day starts at", "Schedule/TimeRange/beginTime"),
  timeField("nightStart", "Night starts at", "Schedule/TimeRange/endTime"),
];

function useStatus(version) {
  const [status, setStatus] = useState(null);
  useEffect(() => {
    let alive = true;
    const read = () =>
      isapi("GET", STATUS)
        .then((root) => alive && setStatus(root))
        .catch(() => alive && setStatus(false)); // a channel without an IR-cut has no status
    read();
    const timer = setInterval(read, STATUS_MS);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [version]);
  return status;
}

function CurrentState({ status }) {
  if (status === null) return html`<p>Reading the current state…</p>`;
  if (status === false) return null;
  const lux = textAt(status, "lightLevel");
  return html`<dl class="facts" aria-live="polite">
    <dt>Now</dt><dd id="daynight-state">${textAt(status, "currentState")}</dd>
    <dt>Light</dt><dd id="daynight-lux">${lux ? `${lux} lux` : "no reading"}</dd>
    <dt>IR illuminator</dt><dd id="daynight-ir">${textAt(status, "supplementLightOn") === "true" ? "on" : "off"}</dd>
  </dl>`;
}

const LIGHT_FIELDS = [
  {
    key: "supplementLightMode",
    label: "IR illuminator at night",
    type: "select",
    options: [
      ["irLight", "On"],
      ["close", "Off"],
    ],
  },
];

function SupplementLight({ onSaved }) {
  const form = useIsapiForm(LIGHT, LIGHT_FIELDS, { onSaved });
  return html`<h3>IR illuminator</h3><${IsapiForm} form=${form} label="IR illuminator" />`;
}

/** Whether the device has the resource at `path` (a board without an illuminator has none). */
function useHas(path) {
  const [has, setHas] = useState(null);
  useEffect(() => {
    isapi("GET", path).then(() => setHas(true), () => setHas(false));
  }, [path]);
  return has;
}

export function DayNightPage() {
  const [version, setVersion] = useState(0);
  const saved = () => setVersion((v) => v + 1);
  const form = useIsapiForm(PATH, FIELDS, { onSaved: saved });
  const status = useStatus(version);
  const hasLight = useHas(LIGHT);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Day/Night</h2>
    <${CurrentState} status=${status} />
    <${IsapiForm} form=${form} label="Day/night" />
    ${hasLight && html`<${SupplementLight} onSaved=${saved} />`}
  </section>`;
}
