// The Playback page's day timeline: 24 hours as a bar with hour ticks, each recorded span a
// button coloured by its record type (continuous, event, manual), and the playing position as a
// cursor. Times are drawn on the device's clock: `offset` is its UTC offset in milliseconds.
import { html } from "./ui.js";

export const DAY_MS = 86_400_000;
// The search's record-type words (vigil.api.isapi_record RESULT_WORDS) -> the span's colour and
// name. Motion, alarm and the combined `event` are all "event" footage on the bar.
const TYPES = {
  timing: ["continuous", "Continuous"],
  motion: ["event", "Motion"],
  alarm: ["event", "Alarm"],
  event: ["event", "Event"],
  manual: ["manual", "Manual"],
};
const LEGEND = [
  ["continuous", "Continuous"],
  ["event", "Event (motion, alarm)"],
  ["manual", "Manual"],
];
const LABELLED_HOURS = [0, 3, 6, 9, 12, 15, 18, 21, 24];

/** "07:38:41": the time of day of `ms` (UTC epoch) on a clock `offset` ms east of UTC. */
export function clock(ms, offset) {
  return new Date(ms + offset).toISOString().slice(11, 19);
}

export function spanLabel(span, offset) {
  const name = (TYPES[span.type] || ["", span.type])[1];
  return `${name} ${clock(span.start, offset)}–${clock(span.end, offset)}`;
}

/**
 * The search's matches (one a recording file, oldest first) joined into spans: the next file of
 * the same type that starts within a second of the last one's end continues it (the device rounds
 * a file's end up to the second, so back-to-back files touch or overlap). A day of continuous
 * recording is then one span rather than 1440 buttons of a minute each.
 */
export function joinSpans(matches) {
  const spans = [];
  for (const match of matches) {
    const last = spans[spans.length - 1];
    if (last && last.type === match.type && match.start <= last.end + 1000) {
      last.end = Math.max(last.end, match.end);
    } else {
      spans.push({ ...match });
    }
  }
  return spans;
}

function percent(ms, dayStart) {
  return `${(Math.min(Math.max(ms - dayStart, 0), DAY_MS) / DAY_MS) * 100}%`;
}

/** The moment under the pointer of a click on the bar (or on a span in it). */
function momentAt(event, dayStart) {
  const box = event.currentTarget.closest(".timeline-bar").getBoundingClientRect();
  return dayStart + Math.round(((event.clientX - box.left) / box.width) * DAY_MS);
}

function Span({ span, dayStart, offset, onPick }) {
  const pick = (event) => {
    event.stopPropagation();
    // A key press (Enter, Space) has no pointer position: it plays the span from its start; so
    // does a click on the part of a short span's button that its minimum width adds.
    const at = event.detail === 0 ? span.start : momentAt(event, dayStart);
    onPick(at >= span.start && at < span.end ? at : span.start, span);
  };
  const [left, right] = [percent(span.start, dayStart), percent(span.end, dayStart)];
  const style = { left, width: `calc(${right} - ${left})` };
  return html`<button type="button" class=${`timeline-span ${(TYPES[span.type] || ["event"])[0]}`}
    style=${style} aria-label=${spanLabel(span, offset)} title=${spanLabel(span, offset)}
    data-start=${span.start} data-end=${span.end} onClick=${pick}></button>`;
}

export function Legend() {
  return html`<ul class="timeline-legend" aria-label="Record types">
    ${LEGEND.map(([kind, name]) => html`<li><span class=${`swatch ${kind}`} aria-hidden="true"></span>${name}</li>`)}
  </ul>`;
}

/** The bar: a click anywhere asks to play from that moment (`onPick(ms, span or null)`). */
export function Timeline({ spans, dayStart, offset, cursor, onPick }) {
  return html`<div class="timeline">
    <div class="timeline-bar" onClick=${(event) => onPick(momentAt(event, dayStart), null)}>
      ${spans.map((span) => html`<${Span} key=${span.start} span=${span} dayStart=${dayStart} offset=${offset} onPick=${onPick} />`)}
      ${cursor !== null && cursor >= dayStart && cursor < dayStart + DAY_MS &&
      html`<div class="timeline-cursor" style=${{ left: percent(cursor, dayStart) }} aria-hidden="true"></div>`}
    </div>
    <div class="timeline-hours" aria-hidden="true">
      ${LABELLED_HOURS.map(
        (hour) => html`<span class="timeline-hour" style=${{ left: `${(hour / 24) * 100}%` }}>${String(hour).padStart(2, "0")}</span>`,
      )}
    </div>
    <${Legend} />
  </div>`;
}
