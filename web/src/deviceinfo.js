// Configuration → System → Device information: the pattern every configuration page follows.
// Read the ISAPI document, edit what may change, PUT it, and show the device's refusal next to
// the field it names (the message's <tag>), or above the form when it names none (form.js).
import { IsapiForm, textAt, useIsapiForm } from "./form.js";
import { SystemStatus } from "./status.js";
import { html } from "./ui.js";

const PATH = "/ISAPI/System/deviceInfo";
const FIELDS = [{ key: "deviceName", label: "Device name" }];
const SHOWN = {
  model: "Model",
  serialNumber: "Serial number",
  firmwareVersion: "Firmware version",
  macAddress: "MAC address",
  deviceID: "Device ID",
};

export function DeviceInfoPage() {
  const form = useIsapiForm(PATH, FIELDS);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Device information</h2>
    <${IsapiForm} form=${form}>
      <dl class="facts">
        ${Object.entries(SHOWN).map(
          ([key, label]) => html`<dt>${label}</dt><dd id=${key}>${textAt(form.root, key)}</dd>`,
        )}
      </dl>
    <//>
    <${SystemStatus} />
  </section>`;
}
