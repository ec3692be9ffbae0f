// Rectangles drawn over a snapshot of the channel (privacy masks, motion areas), in the device's
// own coordinate space. A rectangle is { left, top, right, bottom } in the units of `screen`
// ({ width, height }: 704x576 for masks and overlays, 1000x1000 for detection) with the origin
// at the TOP left, as the user sees it; Hikvision's documents put the origin at the bottom left,
// so regionRect/writeRegion turn one into the other. Extra keys of a rectangle (a motion area's
// sensitivity) ride along untouched.
//
// Mouse: drag on the picture draws a rectangle, drag a rectangle moves it, its corner handle
// resizes it. Keyboard: "Add rectangle" puts one in the middle; with the picture focused the
// arrow keys move the chosen rectangle (Shift: resize), Delete removes it; the list below
// chooses one.
import { useEffect, useRef, useState } from "preact/hooks";
import { picture } from "./live.js";
import { elementAt } from "./form.js";
import { html } from "./ui.js";

export const MASK_SCREEN = { width: 704, height: 576 }; // Hikvision's normalized screen
export const THOUSANDTHS = { width: 1000, height: 1000 }; // the detection documents' screen
const MIN_SIDE = 4; // smaller drags are clicks, not rectangles (in the screen's units)
const HANDLE = 14; // the resize handle's side, in the screen's units of a 704-wide screen

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

/** A rectangle's corners in Hikvision's coordinates (origin bottom left), clockwise from the top
 * left, as RegionCoordinatesList lists them. */
export function cornersOf(rect, screen) {
  const top = screen.height - rect.top;
  const bottom = screen.height - rect.bottom;
  return [
    [rect.left, top],
    [rect.right, top],
    [rect.right, bottom],
    [rect.left, bottom],
  ];
}

/** The rectangle of an element's RegionCoordinatesList (corners in any order), or null. */
export function regionRect(element, screen) {
  const list = elementAt(element, "RegionCoordinatesList");
  if (!list) return null;
  const points = [...list.children].map((corner) => [
    Number(elementAt(corner, "positionX")?.textContent),
    Number(elementAt(corner, "positionY")?.textContent),
  ]);
  if (!points.length || points.some(([x, y]) => Number.isNaN(x) || Number.isNaN(y))) return null;
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  const [top, bottom] = [screen.height - Math.max(...ys), screen.height - Math.min(...ys)];
  return { left: Math.min(...xs), top, right: Math.max(...xs), bottom };
}

/** A child element `name` of `parent` with `text` (when given), in the document's namespace. */
export function appendElement(parent, name, text) {
  const child = parent.ownerDocument.createElementNS(parent.namespaceURI, name);
  if (text !== undefined) child.textContent = String(text);
  parent.appendChild(child);
  return child;
}

/** Writes the rectangle as `element`'s RegionCoordinatesList (replacing one it had). */
export function writeRegion(element, rect, screen) {
  elementAt(element, "RegionCoordinatesList")?.remove();
  const list = appendElement(element, "RegionCoordinatesList");
  for (const [x, y] of cornersOf(rect, screen)) {
    const corner = appendElement(list, "RegionCoordinates");
    appendElement(corner, "positionX", x);
    appendElement(corner, "positionY", y);
  }
  return list;
}

// A change takes effect in the stream a moment after the device says it is saved (the next
// pictures through the encoder), so after a change the picture is fetched again a few times.
const SETTLE_MS = [0, 1500, 4000];

/** The stream's current picture as an object URL, fetched again whenever `version` changes. */
export function useSnapshot(stream, version) {
  const [state, setState] = useState({ url: "", error: "" });
  useEffect(() => {
    let alive = true;
    const urls = [];
    const fetchOne = () =>
      picture(stream)
        .then((blob) => {
          if (!alive) return;
          const url = URL.createObjectURL(blob);
          urls.push(url);
          setState({ url, error: "" });
        })
        .catch((failure) => alive && setState((old) => ({ ...old, error: failure.message })));
    const timers = (version ? SETTLE_MS : [0]).map((ms) => setTimeout(fetchOne, ms));
    return () => {
      alive = false;
      timers.forEach(clearTimeout);
      // The old picture stays shown until the new one is in: revoke them a little later.
      setTimeout(() => urls.forEach((url) => URL.revokeObjectURL(url)), 5000);
    };
  }, [stream, version]);
  return state;
}

/** The channel's picture (refreshed when `version` changes), with `children` drawn over it. */
export function Snapshot({ stream = "101", version = 0, alt, children }) {
  const { url, error } = useSnapshot(stream, version);
  return html`<div class="snapshot">
    <div class="snapshot-frame">
      ${url ? html`<img class="snapshot-img" src=${url} alt=${alt} data-version=${version} />` : html`<div class="snapshot-img"></div>`}
      ${children}
    </div>
    ${error && html`<p class="field-error" role="alert">${error}</p>`}
  </div>`;
}

function normalized(a, b) {
  return {
    left: Math.min(a[0], b[0]),
    top: Math.min(a[1], b[1]),
    right: Math.max(a[0], b[0]),
    bottom: Math.max(a[1], b[1]),
  };
}

/** A rectangle moved by (dx, dy), kept inside the screen whole. */
function moved(rect, dx, dy, screen) {
  const x = clamp(dx, -rect.left, screen.width - rect.right);
  const y = clamp(dy, -rect.top, screen.height - rect.bottom);
  return { ...rect, left: rect.left + x, right: rect.right + x, top: rect.top + y, bottom: rect.bottom + y };
}

/** A rectangle whose bottom right corner moved by (dx, dy), no smaller than MIN_SIDE. */
function resized(rect, dx, dy, screen) {
  const right = clamp(rect.right + dx, rect.left + MIN_SIDE, screen.width);
  const bottom = clamp(rect.bottom + dy, rect.top + MIN_SIDE, screen.height);
  return { ...rect, right, bottom };
}

/** "176,144 to 528,432" (the screen's units, top left origin). */
export function rectText(rect) {
  return `${rect.left},${rect.top} to ${rect.right},${rect.bottom}`;
}

const KEY_STEPS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

/** The pointer's place on the SVG in the screen's units, clamped to the screen. */
function pointOf(event, svg, screen) {
  const box = svg.getBoundingClientRect();
  const x = ((event.clientX - box.left) / box.width) * screen.width;
  const y = ((event.clientY - box.top) / box.height) * screen.height;
  return [Math.round(clamp(x, 0, screen.width)), Math.round(clamp(y, 0, screen.height))];
}

/** The drag under way: what it does (draw, move, resize) to which rectangle, from where. */
function dragUpdate(drag, point, screen) {
  const [dx, dy] = [point[0] - drag.start[0], point[1] - drag.start[1]];
  if (drag.kind === "draw") return { ...drag.made, ...normalized(drag.start, point) };
  if (drag.kind === "move") return moved(drag.original, dx, dy, screen);
  return resized(drag.original, dx, dy, screen);
}

function usePointerDrawing({ rects, onChange, screen, max, make, selected, setSelected }) {
  const svg = useRef(null);
  const [drag, setDrag] = useState(null);
  const begin = (event, kind, index) => {
    if (event.button !== 0) return;
    event.preventDefault();
    event.stopPropagation();
    svg.current.focus({ preventScroll: true }); // a scroll now would move the picture under the pointer
    svg.current.setPointerCapture?.(event.pointerId);
    const start = pointOf(event, svg.current, screen);
    if (kind === "draw") {
      if (rects.length >= max) return;
      const made = make(normalized(start, start));
      setDrag({ kind, index: rects.length, start, made });
      onChange([...rects, made]);
      setSelected(rects.length);
      return;
    }
    setSelected(index);
    setDrag({ kind, index, start, original: rects[index] });
  };
  const update = (event) => {
    if (!drag) return;
    const next = dragUpdate(drag, pointOf(event, svg.current, screen), screen);
    onChange(rects.map((rect, i) => (i === drag.index ? next : rect)));
  };
  const end = (event) => {
    if (!drag) return;
    const next = dragUpdate(drag, pointOf(event, svg.current, screen), screen);
    const tiny = next.right - next.left < MIN_SIDE || next.bottom - next.top < MIN_SIDE;
    if (drag.kind === "draw" && tiny) {
      onChange(rects.filter((_, i) => i !== drag.index));
      setSelected(-1);
    } else {
      onChange(rects.map((rect, i) => (i === drag.index ? next : rect)));
    }
    setDrag(null);
  };
  return { svg, begin, update, end, selected };
}

/** The arrow keys move the chosen rectangle (Shift: resize it), Delete removes it. */
function keyHandler({ rects, onChange, screen, selected, setSelected }) {
  return (event) => {
    const rect = rects[selected];
    if (!rect) return;
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      onChange(rects.filter((_, i) => i !== selected));
      setSelected(-1);
      return;
    }
    const step = KEY_STEPS[event.key];
    if (!step) return;
    event.preventDefault();
    const size = event.altKey ? 1 : Math.round(screen.width / 50); // Alt: one unit at a time
    const [dx, dy] = [step[0] * size, step[1] * size];
    const next = event.shiftKey ? resized(rect, dx, dy, screen) : moved(rect, dx, dy, screen);
    onChange(rects.map((r, i) => (i === selected ? next : r)));
  };
}

function RectShape({ rect, index, chosen, handle, begin }) {
  return html`<g class=${chosen ? "area chosen" : "area"} data-index=${index}>
    <rect x=${rect.left} y=${rect.top} width=${rect.right - rect.left} height=${rect.bottom - rect.top}
      onPointerDown=${(e) => begin(e, "move", index)} />
    <text x=${rect.left + 4} y=${rect.top + handle + 2} aria-hidden="true">${index + 1}</text>
    ${chosen && html`<rect class="area-handle" x=${rect.right - handle} y=${rect.bottom - handle}
      width=${handle} height=${handle} onPointerDown=${(e) => begin(e, "resize", index)} />`}
  </g>`;
}

function AreaList({ id, rects, selected, choose, name }) {
  if (!rects.length) return html`<p class="hint">No ${name.toLowerCase()}s: drag on the picture, or add one.</p>`;
  return html`<ol class="area-list" id=${`${id}-list`}>
    ${rects.map(
      (rect, index) => html`<li>
        <button type="button" class="plain" aria-pressed=${index === selected ? "true" : "false"}
          onClick=${() => choose(index)}>${name} ${index + 1}: ${rectText(rect)}</button>
      </li>`,
    )}
  </ol>`;
}

/**
 * Rectangles over the channel's picture. `rects` and `onChange(rects)` hold them (the page owns
 * them); `screen` is the coordinate space; `max` the most there may be; `make(rect)` gives a new
 * rectangle its extra keys; `name` what one is called ("Mask"); `version` refreshes the picture;
 * `onSelect(index)` hears which one is chosen (-1: none), e.g. to show its own settings.
 */
export function AreaEditor(props) {
  const { id, label, rects, onChange, screen = MASK_SCREEN, max = 8, name = "Area" } = props;
  const { make = (rect) => rect, stream = "101", version = 0, error, onSelect } = props;
  const [selected, setChosen] = useState(-1);
  const setSelected = (index) => {
    setChosen(index);
    if (onSelect) onSelect(index);
  };
  const shared = { rects, onChange, screen, max, make, selected, setSelected };
  const pointer = usePointerDrawing(shared);
  const handle = Math.round((HANDLE * screen.width) / MASK_SCREEN.width);
  const add = () => {
    const [w, h] = [Math.round(screen.width / 4), Math.round(screen.height / 4)];
    const [left, top] = [Math.round((screen.width - w) / 2), Math.round((screen.height - h) / 2)];
    onChange([...rects, make({ left, top, right: left + w, bottom: top + h })]);
    setSelected(rects.length);
    pointer.svg.current?.focus();
  };
  // A rectangle chosen from the list hands the focus to the picture, where the keys move it.
  const chooseListed = (index) => {
    setSelected(index);
    pointer.svg.current?.focus();
  };
  const remove = () => {
    onChange(rects.filter((_, i) => i !== selected));
    setSelected(-1);
  };
  const help = `${id}-help`;
  return html`<div class="field area-editor">
    <p class="label" id=${`${id}-label`}>${label}</p>
    <${Snapshot} stream=${stream} version=${version} alt=${`The channel's picture under the ${name.toLowerCase()}s`}>
      <svg id=${id} ref=${pointer.svg} class="areas" viewBox=${`0 0 ${screen.width} ${screen.height}`} preserveAspectRatio="none"
        tabindex="0" role="application" aria-labelledby=${`${id}-label`} aria-describedby=${[help, error ? `${id}-error` : ""].join(" ").trim()}
        aria-invalid=${error ? "true" : "false"}
        onPointerDown=${(e) => pointer.begin(e, "draw")} onPointerMove=${pointer.update}
        onPointerUp=${pointer.end} onPointerCancel=${pointer.end} onKeyDown=${keyHandler(shared)}>
        ${rects.map((rect, index) => html`<${RectShape} rect=${rect} index=${index} chosen=${index === selected}
          handle=${handle} begin=${pointer.begin} />`)}
      </svg>
    <//>
    <p class="hint" id=${help}>
      Drag on the picture to draw (at most ${max}); drag one to move it, its corner to resize it.
      Keyboard: choose one below, then on the picture the arrow keys move it, Shift+arrows resize
      it, Delete removes it. Coordinates are in the device's ${screen.width}x${screen.height} screen.
    </p>
    <div class="row-actions">
      <button type="button" class="plain" onClick=${add} disabled=${rects.length >= max}>Add ${name.toLowerCase()}</button>
      <button type="button" class="plain danger" onClick=${remove} disabled=${selected < 0}>Delete ${name.toLowerCase()}</button>
    </div>
    <${AreaList} id=${id} rects=${rects} selected=${selected} choose=${chooseListed} name=${name} />
    ${error && html`<p id=${`${id}-error`} class="field-error" role="alert">${error}</p>`}
  </div>`;
}
