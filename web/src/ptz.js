// Configuration → PTZ: the dome on the RS-485 line. This module has the settings tab (the Pelco
// protocol and address of PTZCtrl/channels/1, the serial line of System/Serial/ports/1), the park
// action tab, and DomeOnly, which every PTZ tab is drawn in: a device without a PTZ line answers
// every PTZCtrl resource 403 notSupport, and the tab then says so instead of showing forms.
import { useEffect, useState } from "preact/hooks";
import { isapi } from "./api.js";
import { IsapiForm, capsAt, textAt, useIsapiForm } from "./form.js";
import { CHANNEL } from "./ptzpad.js";
import { html } from "./ui.js";

export const CAPABILITIES = `${CHANNEL}/capabilities`;
const SERIAL_PORT = "/ISAPI/System/Serial/ports/1";

/** The PTZ capabilities: null while loading, false where the device has no dome, or the error. */
function useDome() {
  const [dome, setDome] = useState({ caps: null });
  useEffect(() => {
    isapi("GET", CAPABILITIES).then(
      (caps) => setDome({ caps }),
      (error) => setDome(error.subStatus === "notSupport" ? { none: error.message } : { error: error.message }),
    );
  }, []);
  return dome;
}

/** A PTZ tab: its title, then its content, or why there is none (no dome, or the device's error). */
export function DomeOnly({ title, children }) {
  const dome = useDome();
  let body = html`<p>Loading…</p>`;
  if (dome.none) {
    body = html`<p class="no-ptz" role="status">No PTZ on this device: it has no dome on an RS-485 line.</p>
      <p class="hint">The device says: ${dome.none}</p>`;
  } else if (dome.error) {
    body = html`<p class="field-error" role="alert">${dome.error}</p>`;
  } else if (dome.caps) {
    body = children(dome.caps);
  }
  return html`<section class="ptz-page" aria-labelledby="page-title">
    <h2 id="page-title">${title}</h2>
    ${body}
  </section>`;
}

/** min and max of a capabilities element written as child elements (<min>, <max>). */
export function rangeAt(caps, path) {
  return { min: textAt(caps, `${path}/min`) || undefined, max: textAt(caps, `${path}/max`) || undefined };
}

/** A select's options: the capabilities' opt list at `path`, each shown by its name in `names`. */
function labelled(path, names) {
  return (caps) => (capsAt(caps, path).opt || []).map((value) => [value, names[value] || value]);
}

// -- settings: protocol, address, serial line ---------------------------------------------------
const CHANNEL_FIELDS = [
  {
    key: "controlProtocol",
    label: "Protocol",
    type: "select",
    aliases: ["protocol"],
    options: labelled("controlProtocol", { "PELCO-D": "Pelco-D", "PELCO-P": "Pelco-P" }),
  },
  {
    key: "address",
    path: "controlAddress/Address",
    label: "Dome address",
    type: "number",
    rangeOf: (caps) => rangeAt(caps, "controlAddress"),
  },
];

// The line's words as the device sends them; the page only labels them.
const PARITY = { none: "None", even: "Even", odd: "Odd", mark: "Mark", space: "Space" };
const FLOW = { none: "None", software: "Software (XON/XOFF)", hardware: "Hardware (RTS/CTS)" };
const SERIAL_FIELDS = [
  { key: "baudRate", label: "Baud rate", type: "select", aliases: ["baud"] },
  { key: "dataBits", label: "Data bits", type: "select", aliases: ["data_bits"] },
  { key: "parityType", label: "Parity", type: "select", aliases: ["parity"],
    options: labelled("parityType", PARITY) },
  { key: "stopBits", label: "Stop bits", type: "select", aliases: ["stop_bits"] },
  { key: "flowCtrl", label: "Flow control", type: "select", aliases: ["flow_control"],
    options: labelled("flowCtrl", FLOW) },
];

function ChannelForm() {
  const form = useIsapiForm(CHANNEL, CHANNEL_FIELDS, { capabilities: CAPABILITIES });
  return html`<h3>Dome</h3>
    <${IsapiForm} form=${form} label="Dome protocol and address" />`;
}

function SerialForm() {
  const form = useIsapiForm(SERIAL_PORT, SERIAL_FIELDS, { capabilities: `${SERIAL_PORT}/capabilities` });
  return html`<h3>RS-485 line</h3>
    <p class="hint">The serial port the dome hangs on (half duplex). Its settings must match the dome's.</p>
    <${IsapiForm} form=${form} label="RS-485 line" />`;
}

export function PtzSettingsPage() {
  return html`<${DomeOnly} title="PTZ settings">${() => html`<${ChannelForm} /><${SerialForm} />`}<//>`;
}

// -- park action --------------------------------------------------------------------------------
const ACTIONS = { preset: "Go to a preset", patrol: "Run a patrol", pattern: "Run a pattern" };
const PARK_FIELDS = [
  { key: "enabled", label: "Park when idle", type: "checkbox" },
  {
    key: "Parktime",
    label: "Idle time (s)",
    type: "number",
    aliases: ["idle_s"],
    rangeOf: (caps) => rangeAt(caps, "ParkAction/Parktime"),
  },
  {
    key: "ActionType",
    path: "Action/ActionType",
    label: "Then",
    type: "select",
    aliases: ["action"],
    options: labelled("ParkAction/ActionType", ACTIONS),
  },
  {
    // The device checks the number against the chosen kind as a whole (<ParkAction>: "the park
    // action's patrol is 1..8"): `match` puts that refusal here.
    key: "ActionNum",
    path: "Action/ActionNum",
    label: "Preset, patrol or pattern number",
    type: "number",
    aliases: ["target"],
    match: /park action's/,
    hintNode: (values) => html`<p id="ActionNum-hint" class="hint">${values.ActionType === "preset"
      ? "A preset's number (Presets tab)" : `A ${values.ActionType}'s number (Patrols tab)`}</p>`,
  },
];

export function ParkPage() {
  return html`<${DomeOnly} title="Park action">${() => html`<${ParkForm} />`}<//>`;
}

function ParkForm() {
  const form = useIsapiForm(`${CHANNEL}/parkaction`, PARK_FIELDS, { capabilities: CAPABILITIES });
  return html`<p class="hint">After this long without a PTZ command, the dome parks: it goes to a
      preset or runs a patrol or pattern.</p>
    <${IsapiForm} form=${form} label="Park action" />`;
}
