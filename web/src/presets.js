// Configuration → PTZ → Presets: move the dome with the live view's pad (ptzpad.js), set a preset
// at where it is with a name, go to one, clear one; and the home position, set and gone to the
// same way. The dome's position is read from PTZCtrl/channels/1/status every second while the tab
// is open, so the pad's moves show as they happen.
import { useEffect, useState } from "preact/hooks";
import { isapi, xmlDocument } from "./api.js";
import { FormError, elementAt, errorsOf, textAt } from "./form.js";
import { DomeOnly } from "./ptz.js";
import { CHANNEL, MovePad, useSerial } from "./ptzpad.js";
import { Field, TableHead, html } from "./ui.js";

const POLL_MS = 1000;

/** A document's AbsoluteHigh (ISAPI's tenths of a degree and of a zoom ratio) as the page writes it. */
export function positionText(root) {
  const high = elementAt(root, "AbsoluteHigh");
  const tenths = (name) => (Number(textAt(high, name)) / 10).toFixed(1);
  return { pan: `${tenths("azimuth")}°`, tilt: `${tenths("elevation")}°`, zoom: `${tenths("absoluteZoom")}×` };
}

function useStatus() {
  const [status, setStatus] = useState(null);
  useEffect(() => {
    let live = true;
    const read = () => isapi("GET", `${CHANNEL}/status`).then((doc) => live && setStatus(doc), () => {});
    read();
    const timer = setInterval(read, POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  return status;
}

/** Where the dome is, and the pad that moves it. */
export function DomeControl() {
  const status = useStatus();
  const run = useSerial();
  const where = status && positionText(status);
  return html`<div class="ptz dome-control">
    <div><${MovePad} run=${run} /></div>
    <dl class="facts" aria-live="off">
      <dt>Pan</dt><dd id="ptz-pan">${where?.pan}</dd>
      <dt>Tilt</dt><dd id="ptz-tilt">${where?.tilt}</dd>
      <dt>Zoom</dt><dd id="ptz-zoom">${where?.zoom}</dd>
    </dl>
  </div>`;
}

function presetsOf(list) {
  return [...list.children].map((p) => ({ id: textAt(p, "id"), name: textAt(p, "presetName"),
    where: positionText(p) }));
}

// The fields of the set form, for the device's refusals (form.js fieldOf): a number out of range
// is refused by the URL ("no preset 300"), a name by <presetName>.
const SET_FIELDS = [
  { key: "presetId", label: "Preset number", aliases: ["id"], match: /no preset/ },
  { key: "presetName", label: "Name", aliases: ["name"] },
];

function firstFree(presets) {
  const used = new Set(presets.map((p) => Number(p.id)));
  let id = 1;
  while (used.has(id)) id += 1;
  return String(id);
}

function SetPreset({ presets, onSet }) {
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [errors, setErrors] = useState({});
  const number = id || firstFree(presets);
  async function set(event) {
    event.preventDefault();
    setErrors({});
    try {
      await isapi("PUT", `${CHANNEL}/presets/${encodeURIComponent(number)}`,
        xmlDocument("PTZPreset", { id: number, presetName: name }));
      setId("");
      setName("");
      onSet(`Preset ${number} set.`);
    } catch (error) {
      setErrors(errorsOf(error, SET_FIELDS));
    }
  }
  return html`<form onSubmit=${set} novalidate aria-label="Set a preset">
    <${Field} id="presetId" label="Preset number" type="number" min="1" max="255" value=${number}
      error=${errors.presetId} onInput=${(e) => setId(e.currentTarget.value)} />
    <${Field} id="presetName" label="Name" value=${name} maxlength="32" error=${errors.presetName}
      onInput=${(e) => setName(e.currentTarget.value)} />
    <${FormError} form=${{ errors }} />
    <div class="actions"><button type="submit">Set preset here</button></div>
  </form>`;
}

function PresetRow({ preset, act }) {
  const named = `preset ${preset.id}${preset.name ? ` (${preset.name})` : ""}`;
  return html`<tr>
    <td>${preset.id}</td><td>${preset.name}</td>
    <td>${preset.where.pan}</td><td>${preset.where.tilt}</td><td>${preset.where.zoom}</td>
    <td><div class="row-actions">
      <button type="button" class="plain" aria-label=${`Go to ${named}`}
        onClick=${() => act("PUT", `presets/${preset.id}/goto`, `Going to ${named}.`)}>Go to</button>
      <button type="button" class="plain danger" aria-label=${`Delete ${named}`}
        onClick=${() => act("DELETE", `presets/${preset.id}`, `Deleted ${named}.`)}>Delete</button>
    </div></td>
  </tr>`;
}

/** A one-line result of the tab's actions: what was done, or the device's refusal. */
export function ActionResult({ result }) {
  if (!result) return null;
  return result.error
    ? html`<p class="field-error" role="alert">${result.error}</p>`
    : html`<p class="saved" role="status">${result.done}</p>`;
}

/** `act(method, path under the channel, done text)`: one action, its result, then `reload`;
 * says whether the device took it. */
export function useActions(reload) {
  const [result, setResult] = useState(null);
  const act = async (method, path, done) => {
    setResult(null);
    let ok = false;
    try {
      await isapi(method, `${CHANNEL}/${path}`);
      setResult({ done });
      ok = true;
    } catch (error) {
      setResult({ error: error.message });
    }
    await reload().catch((error) => setResult({ error: error.message }));
    return ok;
  };
  return { result, setResult, act };
}

function Presets() {
  const [presets, setPresets] = useState(null);
  const reload = () => isapi("GET", `${CHANNEL}/presets`).then((list) => setPresets(presetsOf(list)));
  const { result, setResult, act } = useActions(reload);
  useEffect(() => {
    reload().catch((error) => setResult({ error: error.message }));
  }, []);
  if (!presets) return html`<${ActionResult} result=${result} />`;
  return html`<h3>Set a preset</h3>
    <p class="hint">Move the dome with the pad, then set a preset there.</p>
    <${SetPreset} presets=${presets} onSet=${(done) => { setResult({ done }); reload(); }} />
    <h3>Presets on the dome</h3>
    <${ActionResult} result=${result} />
    ${presets.length
      ? html`<div class="table-scroll"><table class="list" aria-label="Presets">
          <${TableHead} columns=${["Number", "Name", "Pan", "Tilt", "Zoom", "Actions"]} />
          <tbody>${presets.map((p) => html`<${PresetRow} key=${p.id} preset=${p} act=${act} />`)}</tbody>
        </table></div>`
      : html`<p>No presets are set.</p>`}`;
}

function Home() {
  const [home, setHome] = useState(null);
  const reload = () => isapi("GET", `${CHANNEL}/homeposition`).then(setHome);
  const { result, setResult, act } = useActions(reload);
  useEffect(() => {
    reload().catch((error) => setResult({ error: error.message }));
  }, []);
  const set = home && textAt(home, "enabled") === "true";
  const where = set && positionText(home);
  return html`<h3>Home position</h3>
    <p id="home-position">${set ? `Pan ${where.pan}, tilt ${where.tilt}, zoom ${where.zoom}` : "Not set."}</p>
    <div class="row-actions">
      <button type="button" class="plain" onClick=${() => act("PUT", "homeposition", "Home set here.")}>Set home here</button>
      <button type="button" class="plain" disabled=${!set}
        onClick=${() => act("PUT", "homeposition/goto", "Going home.")}>Go home</button>
    </div>
    <${ActionResult} result=${result} />`;
}

export function PresetsPage() {
  return html`<${DomeOnly} title="Presets">${() => html`<${DomeControl} /><${Presets} /><${Home} />`}<//>`;
}
