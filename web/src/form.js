// The form helper every configuration page uses: load an ISAPI document (and its capabilities),
// bind fields to elements of it, PUT the same document back with the fields changed, and show a
// refusal next to the field it names. The loaded document is edited rather than rebuilt, so the
// elements a page does not show (and that the device may need) go back as they came.
import { useEffect, useState } from "preact/hooks";
import { ApiError, isapi } from "./api.js";
import { Field, html } from "./ui.js";

/*
 * A field spec: { key, label, path = key ("Video/GovLength": child names under the root),
 *   type: "text" | "number" | "select" | "checkbox" | "password", scale (stored = shown * scale),
 *   options: [[value, label]] or (caps, values) => [[value, label]] (default: the caps' opt list),
 *   aliases: other names the device's messages use for it (its config model's name),
 *   match: a RegExp that finds the field's refusals when no name does,
 *   show(values), read(root), write(root, value, values), readOnly (or readOnly(values)), hint,
 *   hintNode(values),
 *   autocomplete, render(form) (a field drawn by the page), alsoSets(value) (other fields' values
 *   that follow a change of this one) }
 */

const SERIALIZER = typeof XMLSerializer === "undefined" ? null : new XMLSerializer();

/** The element at a slash path of child names under `root` (made when `create`), or null. */
export function elementAt(root, path, create = false) {
  if (!root) return null; // not loaded yet
  let here = root;
  for (const name of path.split("/")) {
    let next = [...here.children].find((child) => child.localName === name) || null;
    if (!next && create) {
      next = here.ownerDocument.createElementNS(root.namespaceURI, name);
      here.appendChild(next);
    }
    if (!next) return null;
    here = next;
  }
  return here;
}

export function textAt(root, path) {
  const found = elementAt(root, path);
  return found ? found.textContent : "";
}

export function setText(root, path, value) {
  elementAt(root, path, true).textContent = String(value);
}

export function removeAt(root, path) {
  const found = elementAt(root, path);
  if (found) found.remove();
}

export function serialize(root) {
  return SERIALIZER.serializeToString(root);
}

function pathOf(spec) {
  return spec.path || spec.key;
}

function scaled(value, divisor) {
  if (value === "" || value === undefined || Number.isNaN(Number(value))) return value;
  return String(Number(value) / divisor);
}

function readValue(root, spec) {
  if (spec.read) return spec.read(root);
  const raw = textAt(root, pathOf(spec));
  if (spec.type === "checkbox") return raw === "true";
  return spec.scale ? scaled(raw, spec.scale) : raw;
}

function writeValue(root, spec, value, values) {
  if (spec.write) return spec.write(root, value, values);
  // A number the user typed oddly goes as typed: the device's refusal says what is wrong.
  const stored = spec.scale ? scaled(value, 1 / spec.scale) : value;
  return setText(root, pathOf(spec), stored);
}

/** The capability attributes (min, max, opt) of the spec's element in a capabilities document. */
export function capsAt(caps, path, scale = 1) {
  const found = caps && elementAt(caps, path);
  if (!found) return {};
  const number = (name) => (found.hasAttribute(name) ? scaled(found.getAttribute(name), scale) : undefined);
  const opt = found.getAttribute("opt");
  return { min: number("min"), max: number("max"), opt: opt ? opt.split(",") : undefined };
}

function namesOf(spec) {
  return [spec.key, pathOf(spec).split("/").pop(), ...(spec.aliases || [])];
}

/** The field a refusal is about: the <tag> its message names, or a name of the field's in it. */
export function fieldOf(error, specs) {
  const message = error.message || "";
  const tagged = /<(\w+)>/.exec(message);
  const named = (spec, name) =>
    tagged ? tagged[1] === name : new RegExp(`(^|[^\\w])${name}([^\\w]|$)`).test(message);
  const spec =
    specs.find((s) => namesOf(s).some((name) => named(s, name))) ||
    specs.find((s) => s.match && s.match.test(message));
  return spec ? spec.key : "form";
}

// The config model's path that starts a validation message: "streams[0].gop: 999 is above ...".
const MODEL_PATH = /^[a-z_][a-z0-9_]*(\[\d+\])?(\.[a-z_][a-z0-9_]*(\[\d+\])?)*: /;

/** The refusal in the page's words: <tag>s, and the model path of the field `key`, by label. */
export function describe(error, specs, key) {
  const labelOf = (name) => specs.find((s) => namesOf(s).includes(name))?.label;
  const owner = specs.find((s) => s.key === key);
  return (error.message || "")
    // A part's element (<Color/brightnessLevel>) is named by its last name's label.
    .replace(/<((?:\w+\/)*(\w+))>/g, (tag, path, name) => labelOf(name) || path)
    .replace(MODEL_PATH, (prefix) => (owner ? `${owner.label}: ` : prefix));
}

/** The refusal of a failed call as page errors: { [field key or "form"]: message }. */
export function errorsOf(error, specs) {
  if (!(error instanceof ApiError)) return { form: error.message };
  const key = fieldOf(error, specs);
  return { [key]: describe(error, specs, key) };
}

/** Whether the page may not change the field (`readOnly`: a flag or a test of the values). */
function readOnly(spec, values) {
  return typeof spec.readOnly === "function" ? spec.readOnly(values) : Boolean(spec.readOnly);
}

export function shownSpecs(specs, values) {
  return specs.filter((spec) => !spec.show || spec.show(values));
}

function parseTemplate(text) {
  return new DOMParser().parseFromString(text, "application/xml").documentElement;
}

/** The loaded document with the form's shown, writable fields written into it (a copy). */
function editedDocument(root, specs, values, prepare) {
  const edited = root.cloneNode(true);
  for (const spec of shownSpecs(specs, values)) {
    if (!readOnly(spec, values)) writeValue(edited, spec, values[spec.key], values);
  }
  if (prepare) prepare(edited, values);
  return edited;
}

/**
 * The state of one ISAPI form: `path` is read and written (`put` when the write goes elsewhere);
 * `capabilities` (a path) gives the ranges and choices; `template` (XML text) replaces the read
 * for a new item, sent with `method` (POST) to `put`; `onSaved` runs after a write. Returns the
 * values, errors, a status line, set(key, value), save(event) and load(). `check(values)` may
 * return the page's own errors (a confirmation that differs), which stop the write;
 * `prepare(root, values)` edits the document last (drops what this user may not send).
 */
export function useIsapiForm(path, specs, options = {}) {
  const { capabilities, put, template, method = "PUT", onSaved, check, prepare } = options;
  const [root, setRoot] = useState(null);
  const [caps, setCaps] = useState(null);
  const [values, setValues] = useState({});
  const [errors, setErrors] = useState({});
  const [status, setStatus] = useState("");

  async function load() {
    const doc = template ? parseTemplate(template) : await isapi("GET", path);
    if (capabilities && !caps) setCaps(await isapi("GET", capabilities));
    setRoot(doc);
    setValues(Object.fromEntries(specs.map((spec) => [spec.key, readValue(doc, spec)])));
    return doc;
  }

  useEffect(() => {
    load().catch((error) => setErrors(errorsOf(error, specs)));
  }, [path]);

  async function save(event) {
    if (event) event.preventDefault();
    setErrors({});
    setStatus("");
    const refused = check && check(values);
    if (refused) return setErrors(refused);
    const edited = editedDocument(root, specs, values, prepare);
    try {
      await isapi(method, put || path, serialize(edited));
      await load();
      setStatus("Saved.");
      if (onSaved) onSaved();
    } catch (error) {
      setErrors(errorsOf(error, specs));
    }
  }

  const set = (key, value) => {
    const spec = specs.find((s) => s.key === key);
    setValues((old) => ({ ...old, [key]: value, ...(spec?.alsoSets ? spec.alsoSets(value) : {}) }));
  };
  // The document Save would send, unsaved: what a "Test" button tries.
  const draft = () => serialize(editedDocument(root, specs, values, prepare));
  return { root, caps, values, errors, status, set, save, load, setErrors, setStatus, specs, draft };
}

function optionsOf(spec, form) {
  const { caps, values } = form;
  if (typeof spec.options === "function") return spec.options(caps, values);
  if (spec.options) return spec.options;
  return (capsAt(caps, pathOf(spec)).opt || [values[spec.key]]).map((v) => [v, v]);
}

function ErrorText({ id, error }) {
  return error ? html`<p id=${`${id}-error`} class="field-error" role="alert">${error}</p>` : null;
}

function Select({ spec, form }) {
  const { key, label } = spec;
  const error = form.errors[key];
  return html`<div class="field">
    <label for=${key}>${label}</label>
    <select id=${key} name=${key} value=${form.values[key]} aria-invalid=${error ? "true" : "false"}
      aria-describedby=${error ? `${key}-error` : undefined}
      onChange=${(e) => form.set(key, e.currentTarget.value)}>
      ${optionsOf(spec, form).map(([value, text]) => html`<option value=${value}>${text}</option>`)}
    </select>
    <${ErrorText} id=${key} error=${error} />
  </div>`;
}

function Checkbox({ spec, form }) {
  const { key, label } = spec;
  const error = form.errors[key];
  return html`<div class="field check">
    <input type="checkbox" id=${key} name=${key} checked=${form.values[key]}
      aria-invalid=${error ? "true" : "false"} aria-describedby=${error ? `${key}-error` : undefined}
      onChange=${(e) => form.set(key, e.currentTarget.checked)} />
    <label for=${key}>${label}</label>
    <${ErrorText} id=${key} error=${error} />
  </div>`;
}

function Input({ spec, form }) {
  const { key, label, type = "text" } = spec;
  const ranged = type === "number" && form.caps;
  const rangeOf = spec.rangeOf || ((caps) => capsAt(caps, pathOf(spec), spec.scale || 1));
  const range = ranged ? rangeOf(form.caps) : {};
  const rangeText = range.min !== undefined && range.max !== undefined ? `${range.min} to ${range.max}` : "";
  const hintText = [spec.hint, rangeText].filter(Boolean).join("; ");
  const hint = spec.hintNode
    ? spec.hintNode(form.values)
    : hintText && html`<p id=${`${key}-hint`} class="hint">${hintText}</p>`;
  return html`<${Field} id=${key} label=${label} type=${type} value=${form.values[key]}
    error=${form.errors[key]} hint=${hint} min=${range.min} max=${range.max}
    readOnly=${readOnly(spec, form.values)}
    autocomplete=${spec.autocomplete || (type === "password" ? "new-password" : undefined)}
    onInput=${(e) => form.set(key, e.currentTarget.value)} />`;
}

/** One bound field, drawn by its type. */
export function FormField({ spec, form }) {
  if (spec.render) return spec.render(form);
  if (spec.type === "select") return html`<${Select} spec=${spec} form=${form} />`;
  if (spec.type === "checkbox") return html`<${Checkbox} spec=${spec} form=${form} />`;
  return html`<${Input} spec=${spec} form=${form} />`;
}

/** The shown fields of a form, in order. */
export function FormFields({ form }) {
  return shownSpecs(form.specs, form.values).map((spec) => html`<${FormField} spec=${spec} form=${form} />`);
}

/** The form-level refusal (one no field owns). */
export function FormError({ form }) {
  return form.errors.form ? html`<p class="field-error" role="alert">${form.errors.form}</p>` : null;
}

/** The Save button with the "Saved." status next to it. */
export function SaveBar({ form, label = "Save" }) {
  return html`<div class="actions">
    <button type="submit">${label}</button>
    <span role="status" class="saved">${form.status}</span>
  </div>`;
}

/** A whole form: its refusal, its fields, anything extra, and the Save bar. */
export function IsapiForm({ form, children, label }) {
  if (!form.root) {
    return form.errors.form ? html`<${FormError} form=${form} />` : html`<p>Loading…</p>`;
  }
  return html`<form onSubmit=${form.save} novalidate aria-label=${label}>
    <${FormError} form=${form} />
    <${FormFields} form=${form} />
    ${children}
    <${SaveBar} form=${form} />
  </form>`;
}

/**
 * A select of the items of an ISAPI list (streams, tracks): `list` is its path, `name(item)` its
 * text, `only(item)` which items it offers (all by default); `children(id)` draws the chosen
 * item's page.
 */
export function Chooser({ id, label, list, name, only = () => true, children }) {
  const [items, setItems] = useState(null);
  const [chosen, setChosen] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    isapi("GET", list)
      .then((root) => {
        const found = [...root.children].filter(only).map((item) => [textAt(item, "id"), name(item)]);
        setItems(found);
        setChosen(found.length ? found[0][0] : "");
      })
      .catch((e) => setError(e.message));
  }, [list]);
  if (error) return html`<p class="field-error" role="alert">${error}</p>`;
  if (!items) return html`<p>Loading…</p>`;
  return html`<div class="field">
      <label for=${id}>${label}</label>
      <select id=${id} value=${chosen} onChange=${(e) => setChosen(e.currentTarget.value)}>
        ${items.map(([value, text]) => html`<option value=${value}>${text}</option>`)}
      </select>
    </div>
    ${chosen && children(chosen)}`;
}

/**
 * A "Test" button for a notification form: POSTs the form's unsaved document to `path` and says
 * `done` or the device's reason for failing; a refused setting goes next to its field.
 */
export function TestButton({ form, path, done, label = "Test" }) {
  const [result, setResult] = useState({ ok: true, text: "" });
  async function test() {
    form.setErrors({});
    setResult({ ok: true, text: "Testing…" });
    try {
      await isapi("POST", path, form.draft());
      setResult({ ok: true, text: done });
    } catch (error) {
      const failed = error instanceof ApiError && error.subStatus === "testFailed";
      if (!failed) form.setErrors(errorsOf(error, form.specs));
      setResult({ ok: false, text: failed ? `Test failed: ${error.message}` : "Test not run." });
    }
  }
  return html`<div class="actions test-bar">
    <button type="button" class="plain" onClick=${test}>${label}</button>
    <span role="status" class=${result.ok ? "test-result" : "test-result field-error"}>${result.text}</span>
  </div>`;
}
