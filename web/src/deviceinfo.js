// Configuration → System → Device information: the pattern every configuration page follows.
// Read the ISAPI document, edit what may change, PUT it, and show the device's refusal next to
// the field it names (the message's <tag>), or above the form when it names none.
import { useEffect, useState } from "preact/hooks";
import { ApiError, field, isapi, xmlDocument } from "./api.js";
import { Field, html } from "./ui.js";

const PATH = "/ISAPI/System/deviceInfo";
const EDITABLE = { deviceName: "Device name" };
const SHOWN = {
  model: "Model",
  serialNumber: "Serial number",
  firmwareVersion: "Firmware version",
  macAddress: "MAC address",
  deviceID: "Device ID",
};

/** The field a refusal is about: the first <tag> its message names, if the form has it. */
export function fieldOf(error, fields) {
  const named = /<(\w+)>/.exec(error.message || "");
  return named && named[1] in fields ? named[1] : "form";
}

export function DeviceInfoPage() {
  const [info, setInfo] = useState(null);
  const [values, setValues] = useState({});
  const [errors, setErrors] = useState({});
  const [status, setStatus] = useState("");

  async function load() {
    const doc = await isapi("GET", PATH);
    const read = Object.fromEntries([...Object.keys(EDITABLE), ...Object.keys(SHOWN)].map((k) => [k, field(doc, k)]));
    setInfo(read);
    setValues(Object.fromEntries(Object.keys(EDITABLE).map((k) => [k, read[k]])));
  }

  useEffect(() => {
    load().catch((error) => setErrors({ form: error.message }));
  }, []);

  async function save(event) {
    event.preventDefault();
    setErrors({});
    setStatus("");
    try {
      await isapi("PUT", PATH, xmlDocument("DeviceInfo", values));
      await load();
      setStatus("Saved.");
    } catch (error) {
      const where = error instanceof ApiError ? fieldOf(error, EDITABLE) : "form";
      // "<deviceName> is longer than 64 characters" -> "Device name is longer than ..."
      const message = error.message.replace(/<(\w+)>/g, (tag, name) => EDITABLE[name] || name);
      setErrors({ [where]: message });
    }
  }

  if (!info) {
    return html`<section><h2 id="page-title">Device information</h2>
      ${errors.form ? html`<p class="field-error" role="alert">${errors.form}</p>` : html`<p>Loading…</p>`}
    </section>`;
  }
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Device information</h2>
    <form onSubmit=${save} novalidate>
      ${errors.form && html`<p class="field-error" role="alert">${errors.form}</p>`}
      ${Object.entries(EDITABLE).map(
        ([key, label]) => html`<${Field} id=${key} label=${label} value=${values[key]} error=${errors[key]}
          onInput=${(e) => setValues({ ...values, [key]: e.currentTarget.value })} />`,
      )}
      <dl class="facts">
        ${Object.entries(SHOWN).map(([key, label]) => html`<dt>${label}</dt><dd id=${key}>${info[key]}</dd>`)}
      </dl>
      <div class="actions">
        <button type="submit">Save</button>
        <span role="status" class="saved">${status}</span>
      </div>
    </form>
  </section>`;
}
