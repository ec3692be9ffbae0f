// Configuration → Image → OSD: the channel name (`/ISAPI/System/Video/inputs/channels/1`) and what
// is drawn on the picture (`…/overlays`): the channel name and the date/time with their positions
// and styles, up to 8 text lines, the font size. Positions are the device's: Hikvision's 704x576
// screen with the origin at the BOTTOM left, a text's position its top left corner
// (isapi_image.py); the page shows them as the device does, so they match other clients. The
// snapshot under the forms is fetched again after a save, to see the result.
import { useState } from "preact/hooks";
import { Snapshot, appendElement } from "./areas.js";
import { IsapiForm, elementAt, setText, textAt, useIsapiForm } from "./form.js";
import { Field, html } from "./ui.js";

const CHANNEL = "/ISAPI/System/Video/inputs/channels/1";
const OVERLAYS = `${CHANNEL}/overlays`;
const MAX_LINES = 8;
const SCREEN_HINT = "0 to 704 across, 0 to 576 up from the bottom";

const NAME_FIELDS = [{ key: "name", label: "Channel name", hint: "up to 64 characters" }];

/**
 * A field kept at `path` but named only by its key (and `match`): the overlays document has
 * several `enabled` and `positionX` elements, and a refusal must land on the right one.
 */
function at(key, label, path, extra = {}) {
  const checkbox = extra.type === "checkbox";
  return {
    key,
    label,
    read: (root) => (checkbox ? textAt(root, path) === "true" : textAt(root, path)),
    write: (root, value) => setText(root, path, value),
    ...extra,
  };
}

const position = (key, label, part, axis) =>
  at(key, label, `${part}/position${axis}`, {
    type: "number",
    hint: SCREEN_HINT,
    match: new RegExp(`${part}/position`),
    show: (values) => values[`${key.slice(0, -1)}Shown`],
  });

const DATE_STYLES = ["YYYY-MM-DD", "MM-DD-YYYY", "DD-MM-YYYY", "YYYY/MM/DD", "MM/DD/YYYY", "DD/MM/YYYY"];
const FONT_SIZES = [
  ["auto", "Automatic (by the picture's size)"],
  ["16*16", "Small (16x16)"],
  ["32*32", "Medium (32x32)"],
  ["48*48", "Large (48x48)"],
];

function readLines(root) {
  const list = elementAt(root, "TextOverlayList");
  return [...(list?.children || [])].map((line) => ({
    enabled: textAt(line, "enabled") === "true",
    text: textAt(line, "displayText"),
    x: textAt(line, "positionX"),
    y: textAt(line, "positionY"),
  }));
}

function writeLines(root, lines) {
  const old = elementAt(root, "TextOverlayList");
  const list = appendElement(root, "TextOverlayList");
  if (old) old.replaceWith(list); // keep the document's order
  lines.forEach((line, index) => {
    const item = appendElement(list, "TextOverlay");
    appendElement(item, "id", index + 1);
    appendElement(item, "enabled", line.enabled);
    appendElement(item, "positionX", line.x);
    appendElement(item, "positionY", line.y);
    appendElement(item, "displayText", line.text);
  });
}

function LineRow({ line, index, onChange, onRemove }) {
  const edit = (key, value) => onChange({ ...line, [key]: value });
  const id = `line${index + 1}`;
  const number = index + 1;
  return html`<li class="osd-line">
    <div class="field check">
      <input type="checkbox" id=${`${id}-shown`} checked=${line.enabled}
        onChange=${(e) => edit("enabled", e.currentTarget.checked)} />
      <label for=${`${id}-shown`}>Show line ${number}</label>
    </div>
    <${Field} id=${`${id}-text`} label=${`Text line ${number}`} value=${line.text} maxlength="44"
      onInput=${(e) => edit("text", e.currentTarget.value)} />
    <div class="osd-position">
      <${Field} id=${`${id}-x`} label=${`Line ${number} X`} type="number" value=${line.x}
        onInput=${(e) => edit("x", e.currentTarget.value)} />
      <${Field} id=${`${id}-y`} label=${`Line ${number} Y`} type="number" value=${line.y}
        onInput=${(e) => edit("y", e.currentTarget.value)} />
    </div>
    <button type="button" class="plain danger" onClick=${onRemove}>Remove line ${number}</button>
  </li>`;
}

function TextLines({ form }) {
  const lines = form.values.texts || [];
  const change = (next) => form.set("texts", next);
  // A new line goes on the left, one line under the last, so lines added do not overlap.
  const add = () => change([...lines, { enabled: true, text: "", x: "16", y: String(400 - 40 * lines.length) }]);
  const error = form.errors.texts;
  return html`<fieldset class="osd-lines" aria-describedby=${error ? "texts-error" : undefined}>
    <legend>Text lines (up to ${MAX_LINES}, printable ASCII, 44 characters each)</legend>
    <ol>
      ${lines.map(
        (line, index) => html`<${LineRow} line=${line} index=${index}
          onChange=${(next) => change(lines.map((l, i) => (i === index ? next : l)))}
          onRemove=${() => change(lines.filter((_, i) => i !== index))} />`,
      )}
    </ol>
    <button type="button" class="plain" onClick=${add} disabled=${lines.length >= MAX_LINES}>Add text line</button>
    ${error && html`<p id="texts-error" class="field-error" role="alert">${error}</p>`}
  </fieldset>`;
}

const OVERLAY_FIELDS = [
  { key: "fontSize", label: "Font size", type: "select", options: FONT_SIZES },
  at("nameShown", "Show the channel name", "channelNameOverlay/enabled", { type: "checkbox" }),
  position("nameX", "Channel name X", "channelNameOverlay", "X"),
  position("nameY", "Channel name Y", "channelNameOverlay", "Y"),
  at("dateShown", "Show the date and time", "DateTimeOverlay/enabled", { type: "checkbox" }),
  position("dateX", "Date and time X", "DateTimeOverlay", "X"),
  position("dateY", "Date and time Y", "DateTimeOverlay", "Y"),
  at("dateStyle", "Date style", "DateTimeOverlay/dateStyle", {
    type: "select",
    options: DATE_STYLES.map((style) => [style, style]),
    match: /dateStyle/,
    show: (values) => values.dateShown,
  }),
  at("timeStyle", "Time style", "DateTimeOverlay/timeStyle", {
    type: "select",
    options: [
      ["24hour", "24-hour"],
      ["12hour", "12-hour"],
    ],
    match: /timeStyle/,
    show: (values) => values.dateShown,
  }),
  at("displayWeek", "Show the day of the week", "DateTimeOverlay/displayWeek", {
    type: "checkbox",
    show: (values) => values.dateShown,
  }),
  {
    key: "texts",
    label: "Text lines",
    read: readLines,
    write: writeLines,
    aliases: ["TextOverlayList", "TextOverlay", "displayText"],
    render: (form) => html`<${TextLines} form=${form} />`,
  },
];

export function OsdPage() {
  const [version, setVersion] = useState(0);
  const saved = () => setVersion((v) => v + 1);
  const name = useIsapiForm(CHANNEL, NAME_FIELDS, { onSaved: saved });
  const overlays = useIsapiForm(OVERLAYS, OVERLAY_FIELDS, { onSaved: saved });
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">OSD</h2>
    <div class="image-layout">
      <div>
        <${IsapiForm} form=${name} label="Channel name" />
        <h3>On the picture</h3>
        <${IsapiForm} form=${overlays} label="Overlays" />
      </div>
      <${Snapshot} version=${version} alt="The channel's picture with its OSD" />
    </div>
  </section>`;
}
