// Configuration → PTZ → Patrols and Patterns. A patrol (1-8) is a list of presets, each with a
// dwell time and a speed, started and stopped here; a pattern (1-4) is the pad's moves recorded
// by the dome and played back. Each patrol is edited from the document read (PTZPatrol), its
// steps rewritten as PatrolSequence elements, and PUT back whole.
import { useEffect, useState } from "preact/hooks";
import { isapi } from "./api.js";
import { FormError, elementAt, errorsOf, serialize, setText, textAt } from "./form.js";
import { DomeOnly, rangeAt } from "./ptz.js";
import { ActionResult, DomeControl, useActions } from "./presets.js";
import { CHANNEL } from "./ptzpad.js";
import { Field, TableHead, html } from "./ui.js";

// The step a new row starts with: Hikvision's default dwell and a middle speed (the issue is silent).
const NEW_STEP = { dwell: "5", speed: "30" };
// The step columns' refusals: the device names the element (<delay> 500 is out of range 1..120).
// `step` is the step's own name for the value, `range` where the capabilities give its range.
const STEP_FIELDS = [
  { key: "presetID", label: "Preset", aliases: ["preset", "PatrolSequenceList"] },
  { key: "delay", label: "Dwell time (s)", aliases: ["dwell_s"], step: "dwell", range: "PatrolDwellTime" },
  { key: "seqSpeed", label: "Speed", aliases: ["speed"], step: "speed", range: "PatrolSpeed" },
];
const NUMBER_FIELDS = STEP_FIELDS.filter((spec) => spec.step);
const PATROL_FIELDS = [{ key: "patrolName", label: "Patrol name", aliases: ["name"] }, ...STEP_FIELDS];

function usePresetList() {
  const [presets, setPresets] = useState([]);
  useEffect(() => {
    isapi("GET", `${CHANNEL}/presets`).then((list) =>
      setPresets([...list.children].map((p) => [textAt(p, "id"), textAt(p, "presetName")])),
    );
  }, []);
  return presets;
}

function stepsOf(patrol) {
  const list = elementAt(patrol, "PatrolSequenceList");
  return [...(list ? list.children : [])].map((step) => ({
    preset: textAt(step, "presetID"), dwell: textAt(step, "delay"), speed: textAt(step, "seqSpeed"),
  }));
}

/** The document read, with the name and the steps of the page. */
function patrolDocument(root, name, steps) {
  const edited = root.cloneNode(true);
  setText(edited, "patrolName", name);
  const list = elementAt(edited, "PatrolSequenceList", true);
  list.replaceChildren();
  for (const step of steps) {
    const item = edited.ownerDocument.createElementNS(edited.namespaceURI, "PatrolSequence");
    list.appendChild(item);
    setText(item, "presetID", step.preset);
    setText(item, "delay", step.dwell);
    setText(item, "seqSpeed", step.speed);
  }
  return serialize(edited);
}

function StepCell({ index, spec, step, errors, onChange, caps }) {
  const error = errors[spec.key];
  const range = rangeAt(caps, spec.range);
  return html`<td><input type="number" aria-label=${`Step ${index + 1} ${spec.label}`} value=${step[spec.step]}
    min=${range.min} max=${range.max} aria-invalid=${error ? "true" : "false"}
    aria-describedby=${error ? `${spec.key}-error` : undefined}
    onInput=${(e) => onChange({ ...step, [spec.step]: e.currentTarget.value })} /></td>`;
}

function StepRow({ index, step, presets, errors, caps, onChange, onRemove }) {
  const error = errors.presetID;
  const known = presets.some(([id]) => id === step.preset);
  return html`<tr>
    <td>${index + 1}</td>
    <td><select aria-label=${`Step ${index + 1} preset`} value=${step.preset}
      aria-invalid=${error ? "true" : "false"} aria-describedby=${error ? "presetID-error" : undefined}
      onChange=${(e) => onChange({ ...step, preset: e.currentTarget.value })}>
      ${!known && html`<option value=${step.preset}>${step.preset} (not set)</option>`}
      ${presets.map(([id, name]) => html`<option value=${id}>${id}: ${name || "(no name)"}</option>`)}
    </select></td>
    ${NUMBER_FIELDS.map((spec) => html`<${StepCell} index=${index} spec=${spec} step=${step}
      errors=${errors} onChange=${onChange} caps=${caps} />`)}
    <td><button type="button" class="plain danger" aria-label=${`Remove step ${index + 1}`}
      onClick=${onRemove}>Remove</button></td>
  </tr>`;
}

function StepErrors({ errors }) {
  return STEP_FIELDS.map(({ key }) =>
    errors[key] ? html`<p id=${`${key}-error`} class="field-error" role="alert">${errors[key]}</p>` : null);
}

function columnHead(spec, caps) {
  const { min, max } = rangeAt(caps, spec.range);
  return `${spec.label}, ${min}–${max}`;
}

function Steps({ steps, setSteps, presets, errors, caps }) {
  const change = (index) => (step) => setSteps(steps.map((old, i) => (i === index ? step : old)));
  const remove = (index) => () => setSteps(steps.filter((_, i) => i !== index));
  const add = () => setSteps([...steps, { preset: presets[0]?.[0] || "1", ...NEW_STEP }]);
  return html`<div class="table-scroll"><table class="list" aria-label="Patrol steps">
      <${TableHead} columns=${["Step", "Preset", ...NUMBER_FIELDS.map((spec) => columnHead(spec, caps)), ""]} />
      <tbody>${steps.map((step, i) => html`<${StepRow} index=${i} step=${step} presets=${presets}
        errors=${errors} caps=${caps} onChange=${change(i)} onRemove=${remove(i)} />`)}</tbody>
    </table></div>
    <${StepErrors} errors=${errors} />
    ${!presets.length && html`<p class="hint">No presets are set: set some on the Presets tab first.</p>`}
    <div class="row-actions"><button type="button" class="plain" onClick=${add}
      disabled=${!presets.length}>Add a preset</button></div>`;
}

function PatrolForm({ id, caps, onSaved }) {
  const path = `${CHANNEL}/patrols/${id}`;
  const presets = usePresetList();
  const [root, setRoot] = useState(null);
  const [name, setName] = useState("");
  const [steps, setSteps] = useState([]);
  const [errors, setErrors] = useState({});
  const load = () => isapi("GET", path).then((doc) => {
    setRoot(doc);
    setName(textAt(doc, "patrolName"));
    setSteps(stepsOf(doc));
  });
  const { result, setResult, act } = useActions(load);
  useEffect(() => {
    load().catch((error) => setErrors({ form: error.message }));
  }, [id]);

  async function save(event) {
    event.preventDefault();
    setErrors({});
    setResult(null);
    try {
      await isapi("PUT", path, patrolDocument(root, name, steps));
      await load();
      setResult({ done: "Saved." });
      onSaved();
    } catch (error) {
      setErrors(errorsOf(error, PATROL_FIELDS));
    }
  }
  if (!root) return errors.form ? html`<${FormError} form=${{ errors }} />` : html`<p>Loading…</p>`;
  const defined = textAt(root, "enabled") === "true"; // saved with steps: it can run
  const saved = defined || textAt(root, "patrolName") !== "";
  return html`<form onSubmit=${save} novalidate aria-label=${`Patrol ${id}`}>
    <${FormError} form=${{ errors }} />
    <${Field} id="patrolName" label="Patrol name" value=${name} maxlength="32" error=${errors.patrolName}
      onInput=${(e) => setName(e.currentTarget.value)} />
    <${Steps} steps=${steps} setSteps=${setSteps} presets=${presets} errors=${errors} caps=${caps} />
    <div class="actions">
      <button type="submit">Save</button>
      <button type="button" class="plain" disabled=${!defined}
        onClick=${() => act("PUT", `patrols/${id}/start`, `Patrol ${id} started.`)}>Start</button>
      <button type="button" class="plain" disabled=${!defined}
        onClick=${() => act("PUT", `patrols/${id}/stop`, `Patrol ${id} stopped.`)}>Stop</button>
      <button type="button" class="plain danger" disabled=${!saved}
        onClick=${() => act("DELETE", `patrols/${id}`, `Patrol ${id} deleted.`).then(onSaved)}>Delete</button>
    </div>
    <${ActionResult} result=${result} />
  </form>`;
}

function Patrols({ caps }) {
  const [list, setList] = useState(null);
  const [chosen, setChosen] = useState("1");
  const reload = () => isapi("GET", `${CHANNEL}/patrols`).then((doc) =>
    setList([...doc.children].map((p) => [textAt(p, "id"), textAt(p, "patrolName"), stepsOf(p).length])));
  useEffect(() => {
    reload().catch(() => setList([]));
  }, []);
  if (!list) return html`<p>Loading…</p>`;
  const text = ([id, name, count]) => `${id}${name ? `: ${name}` : ""} (${count ? `${count} presets` : "empty"})`;
  return html`<div class="field">
      <label for="patrol">Patrol</label>
      <select id="patrol" value=${chosen} onChange=${(e) => setChosen(e.currentTarget.value)}>
        ${list.map((item) => html`<option value=${item[0]}>${text(item)}</option>`)}
      </select>
    </div>
    <${PatrolForm} key=${chosen} id=${chosen} caps=${caps} onSaved=${reload} />`;
}

export function PatrolsPage() {
  return html`<${DomeOnly} title="Patrols">${(caps) => html`<${Patrols} caps=${caps} />`}<//>`;
}

// -- patterns -----------------------------------------------------------------------------------
function PatternRow({ pattern, recording, act }) {
  const { id, recorded, seconds } = pattern;
  const here = recording === id;
  const button = (action, label, done, enabled) => html`<button type="button" class="plain"
    aria-label=${`${label} pattern ${id}`} disabled=${!enabled}
    onClick=${() => act("PUT", `patterns/${id}/${action}`, done)}>${label}</button>`;
  return html`<tr>
    <td>${id}</td><td>${here ? "Recording…" : recorded ? `${seconds} s` : "Not recorded"}</td>
    <td><div class="row-actions">
      ${button("recordstart", "Record", `Recording pattern ${id}: move the dome, then stop recording.`, !recording)}
      ${button("recordstop", "Stop recording", `Pattern ${id} recorded.`, here)}
      ${button("run", "Run", `Pattern ${id} running.`, recorded && !recording)}
      ${button("stop", "Stop", `Pattern ${id} stopped.`, recorded && !recording)}
      <button type="button" class="plain danger" aria-label=${`Delete pattern ${id}`} disabled=${!recorded || here}
        onClick=${() => act("DELETE", `patterns/${id}`, `Pattern ${id} deleted.`)}>Delete</button>
    </div></td>
  </tr>`;
}

function Patterns() {
  const [patterns, setPatterns] = useState([]);
  const reload = () => isapi("GET", `${CHANNEL}/patterns`).then((doc) =>
    setPatterns([...doc.children].map((p) => ({ id: textAt(p, "id"), recorded: textAt(p, "enabled") === "true",
      seconds: (Number(textAt(p, "duration")) / 1000).toFixed(1) }))));
  const { result, setResult, act } = useActions(reload);
  // The pattern being recorded, known from this page's own Record (the device's status only says
  // that one is): the other buttons wait until its recording stops.
  const [recording, setRecording] = useState("");
  const patternAct = async (method, path, done) => {
    const [, id, action] = path.split("/");
    const ok = await act(method, path, done);
    if (ok && action === "recordstart") setRecording(id);
    if (ok && action === "recordstop") setRecording("");
  };
  useEffect(() => {
    reload().catch((error) => setResult({ error: error.message }));
  }, []);
  return html`<p class="hint">Record a pattern, move the dome with the pad, stop recording; the
      dome then plays those moves back when the pattern runs.</p>
    <${DomeControl} />
    <${ActionResult} result=${result} />
    <div class="table-scroll"><table class="list" aria-label="Patterns">
      <${TableHead} columns=${["Number", "Length", "Actions"]} />
      <tbody>${patterns.map((p) => html`<${PatternRow} key=${p.id} pattern=${p} recording=${recording}
        act=${patternAct} />`)}</tbody>
    </table></div>`;
}

export function PatternsPage() {
  return html`<${DomeOnly} title="Patterns">${() => html`<${Patterns} />`}<//>`;
}
