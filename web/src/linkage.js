// What an event does (its linkage): the trigger /ISAPI/Event/triggers/{id} edited as a form, one
// control per action. Every event tab (motion, tampering, video loss, alarm input, exceptions)
// uses this one form.
import { useEffect, useState } from "preact/hooks";
import { isapi } from "./api.js";
import { IsapiForm, elementAt, setText, textAt, useIsapiForm } from "./form.js";
import { html } from "./ui.js";

const LIST = "EventTriggerNotificationList";
// The device has one video channel: "record" records its tracks (videoInputID 1).
const CHANNEL = "1";

function notifications(root) {
  const list = elementAt(root, LIST);
  return list ? [...list.children].filter((e) => e.localName === "EventTriggerNotification") : [];
}

const methodOf = (item) => textAt(item, "notificationMethod").toLowerCase();
const has = (method) => (root) => notifications(root).some((item) => methodOf(item) === method);
const numbersOf = (method, path) => (root) =>
  notifications(root).filter((item) => methodOf(item) === method).map((item) => textAt(item, path));

function ptzPreset(root) {
  const item = notifications(root).find((n) => methodOf(n) === "ptz");
  return item ? textAt(item, "ptzAction/actionNum") : "";
}

function addNotification(list, id, method, extra = {}) {
  const item = list.ownerDocument.createElementNS(list.namespaceURI, "EventTriggerNotification");
  list.appendChild(item);
  setText(item, "id", id);
  setText(item, "notificationMethod", method);
  setText(item, "notificationRecurrence", "beginning");
  for (const [path, value] of Object.entries(extra)) setText(item, path, value);
}

/** The list rebuilt from the form's values: the device replaces the linkage whole. */
function writeLinkage(root, values) {
  const list = elementAt(root, LIST, true);
  for (const old of [...list.children]) old.remove();
  if (values.center) addNotification(list, "center", "center");
  if (values.email) addNotification(list, "email", "email");
  if (values.ftp) addNotification(list, "FTP", "FTP");
  if (values.record) addNotification(list, `record-${CHANNEL}`, "record", { videoInputID: CHANNEL });
  for (const output of values.outputs) addNotification(list, `IO-${output}`, "IO", { outputIOPortID: output });
  const preset = String(values.ptzPreset || "").trim();
  if (preset) {
    addNotification(list, `ptz1-preset${preset}`, "ptz", {
      "ptzAction/ptzChannelID": "1",
      "ptzAction/actionName": "preset",
      "ptzAction/actionNum": preset,
    });
  }
}

/** A checkbox per relay output the device has (System/IO/outputs). */
function OutputChoice({ form }) {
  const [outputs, setOutputs] = useState(null);
  const [failure, setFailure] = useState("");
  useEffect(() => {
    isapi("GET", "/ISAPI/System/IO/outputs")
      .then((root) => setOutputs([...root.children].map((item) => [textAt(item, "id"), textAt(item, "name")])))
      .catch((e) => setFailure(`The relay outputs could not be read: ${e.message}`));
  }, []);
  const chosen = form.values.outputs || [];
  const error = form.errors.outputs || failure;
  const toggle = (id, on) => form.set("outputs", on ? [...chosen, id] : chosen.filter((o) => o !== id));
  return html`<fieldset class="choices" aria-describedby=${error ? "outputs-error" : undefined}>
    <legend>Trigger relay outputs</legend>
    ${outputs && outputs.length === 0 && html`<p>This device has no relay output.</p>`}
    ${(outputs || []).map(
      ([id, name]) => html`<div class="field check">
        <input type="checkbox" id=${`output-${id}`} checked=${chosen.includes(id)}
          onChange=${(e) => toggle(id, e.currentTarget.checked)} />
        <label for=${`output-${id}`}>${`Relay output ${id}`}${name ? ` (${name})` : ""}</label>
      </div>`,
    )}
    ${error && html`<p id="outputs-error" class="field-error" role="alert">${error}</p>`}
  </fieldset>`;
}

const noWrite = () => {}; // the list is written whole by writeLinkage
const LINKAGE_FIELDS = [
  { key: "center", label: "Notify the surveillance center (alert stream, alarm servers)", type: "checkbox",
    read: has("center"), write: noWrite },
  { key: "email", label: "Send an e-mail", type: "checkbox", read: has("email"), write: noWrite },
  { key: "ftp", label: "Upload the pictures by FTP", type: "checkbox", read: has("ftp"), write: noWrite,
    aliases: ["FTP"] },
  { key: "record", label: `Record channel ${CHANNEL}`, type: "checkbox", write: noWrite,
    read: (root) => numbersOf("record", "videoInputID")(root).includes(CHANNEL), aliases: ["videoInputID"] },
  { key: "outputs", label: "Relay outputs", read: numbersOf("io", "outputIOPortID"), write: noWrite,
    aliases: ["outputIOPortID"], render: (form) => html`<${OutputChoice} form=${form} />` },
  { key: "ptzPreset", label: "Go to PTZ preset", type: "number", read: ptzPreset, write: noWrite,
    hint: "1 to 255; empty for none", aliases: ["actionNum", "ptzAction"] },
];

/** The linkage form of trigger `trigger` (VMD-1, IO-1, diskfull...). */
export function LinkageForm({ trigger }) {
  const form = useIsapiForm(`/ISAPI/Event/triggers/${trigger}`, LINKAGE_FIELDS, { prepare: writeLinkage });
  return html`<h3>Linkage</h3>
    <${IsapiForm} form=${form} label="Linkage" />`;
}
