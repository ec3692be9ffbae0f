// The live view's PTZ pad, shown only where the PTZ capabilities answer (a dome): eight directions
// and zoom, press and hold to move (a continuous move while pressed, a stop on release, with the
// pointer or with Enter/Space), and the presets to go to. MovePad and useSerial are also the
// Configuration → PTZ → Presets page's (presets.js).
import { useEffect, useRef, useState } from "preact/hooks";
import { field, isapi, xmlDocument } from "./api.js";
import { html } from "./ui.js";

export const CHANNEL = "/ISAPI/PTZCtrl/channels/1";
const SPEED = 50; // of the device's -100..100: a dome's middle speed, fine enough to aim by hand
// [label, symbol, pan, tilt, zoom], row by row; null is the pad's empty centre.
const PAD = [
  ["Up left", "↖", -1, 1, 0], ["Up", "↑", 0, 1, 0], ["Up right", "↗", 1, 1, 0],
  ["Left", "←", -1, 0, 0], null, ["Right", "→", 1, 0, 0],
  ["Down left", "↙", -1, -1, 0], ["Down", "↓", 0, -1, 0], ["Down right", "↘", 1, -1, 0],
];
const ZOOM = [["Zoom out", "−", 0, 0, -1], ["Zoom in", "+", 0, 0, 1]];
const HOLD_KEYS = new Set([" ", "Enter"]);

function move([pan, tilt, zoom]) {
  const speeds = { pan: pan * SPEED, tilt: tilt * SPEED, zoom: zoom * SPEED };
  return isapi("PUT", `${CHANNEL}/continuous`, xmlDocument("PTZData", speeds));
}

/** A button that moves while held: one move when pressed, one stop when released. */
function HoldButton({ label, symbol, speeds, send }) {
  const held = useRef(false);
  const press = () => {
    if (held.current) return; // a key's auto-repeat, or a second pointer
    held.current = true;
    send(speeds);
  };
  const release = () => {
    if (!held.current) return;
    held.current = false;
    send([0, 0, 0]);
  };
  const key = (event) => {
    if (!HOLD_KEYS.has(event.key)) return;
    event.preventDefault(); // no click, no scrolling
    if (event.type === "keydown") press();
    else release();
  };
  const down = (event) => {
    event.currentTarget.setPointerCapture(event.pointerId); // the release comes here too
    press();
  };
  return html`<button type="button" class="ptz-button" aria-label=${label} title=${label}
    onPointerDown=${down} onPointerUp=${release} onPointerCancel=${release}
    onLostPointerCapture=${release} onKeyDown=${key} onKeyUp=${key} onBlur=${release}>
    <span aria-hidden="true">${symbol}</span>
  </button>`;
}

function usePresets() {
  const [presets, setPresets] = useState([]);
  useEffect(() => {
    isapi("GET", `${CHANNEL}/presets`)
      .then((doc) => {
        const list = [...doc.getElementsByTagNameNS("*", "PTZPreset")];
        setPresets(list.map((p) => ({ id: field(p, "id"), name: field(p, "presetName") })));
      })
      .catch(() => setPresets([]));
  }, []);
  return presets;
}

function Presets({ run }) {
  const presets = usePresets();
  const [chosen, setChosen] = useState("");
  const [error, setError] = useState("");
  if (!presets.length) return html`<p class="hint">No presets are set on this dome.</p>`;
  const id = chosen || presets[0].id;
  const go = () => run(() => isapi("PUT", `${CHANNEL}/presets/${id}/goto`), setError);
  return html`<div class="field ptz-presets">
    <label for="ptz-preset">Preset</label>
    <select id="ptz-preset" value=${id} aria-invalid=${error ? "true" : "false"}
      aria-describedby=${error ? "ptz-preset-error" : undefined}
      onChange=${(e) => setChosen(e.currentTarget.value)}>
      ${presets.map((p) => html`<option value=${p.id}>${p.id}: ${p.name || "(no name)"}</option>`)}
    </select>
    <button type="button" onClick=${go}>Go to preset</button>
    ${error && html`<p id="ptz-preset-error" class="field-error" role="alert">${error}</p>`}
  </div>`;
}

/** Requests one after another: a stop never overtakes the move it ends. */
export function useSerial() {
  const chain = useRef(Promise.resolve());
  return (request, setError) => {
    chain.current = chain.current.then(request).then(
      () => setError(""),
      (failure) => setError(failure.message),
    );
  };
}

/** The pan/tilt and zoom buttons and the refusal of a move (the live view's pad, the presets page's). */
export function MovePad({ run }) {
  const [error, setError] = useState("");
  const send = (speeds) => run(() => move(speeds), setError);
  const button = (entry) =>
    entry ? html`<${HoldButton} label=${entry[0]} symbol=${entry[1]} speeds=${entry.slice(2)} send=${send} />`
      : html`<span class="ptz-centre" aria-hidden="true"></span>`;
  return html`<p class="hint" id="ptz-hint">Hold a button (or Enter/Space on it) to move; release to stop.</p>
    <div class="ptz-pad" role="group" aria-label="Pan and tilt" aria-describedby="ptz-hint">${PAD.map(button)}</div>
    <div class="ptz-zoom" role="group" aria-label="Zoom">${ZOOM.map(button)}</div>
    ${error && html`<p id="ptz-error" class="field-error" role="alert">${error}</p>`}`;
}

export function PtzPad() {
  const [dome, setDome] = useState(false);
  const run = useSerial();
  useEffect(() => {
    // A fixed camera answers 403 notSupport: no pad.
    isapi("GET", `${CHANNEL}/capabilities`).then(() => setDome(true), () => setDome(false));
  }, []);
  if (!dome) return null;
  return html`<section class="ptz" aria-labelledby="ptz-title">
    <h3 id="ptz-title">PTZ</h3>
    <${MovePad} run=${run} />
    <${Presets} run=${run} />
  </section>`;
}
