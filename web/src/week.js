// The weekly schedule every page edits the same way (the record schedule of storage.js, the arming
// schedules of events.js): a list of periods { day, start, end, mode? }, drawn as one 24-hour bar
// a day, each period a row of start, end and (when the page has modes) its type.
import { IsapiForm, elementAt, setText, textAt, useIsapiForm } from "./form.js";
import { html } from "./ui.js";

export const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

export const hhmm = (text) => text.slice(0, 5);

export const minutesOf = (text) => {
  const [h, m] = text.split(":").map(Number);
  return h * 60 + m;
};

const modeText = (modes, mode) => (modes && modes.find(([m]) => m === mode)?.[1]) || mode;

/** One day's periods as a 24-hour bar (SVG: no inline style, which the page's CSP forbids). */
export function DayBar({ day, periods, modes, emptyText }) {
  const words = periods.map((p) => [`${p.start} to ${p.end}`, modes && modeText(modes, p.mode)].filter(Boolean).join(" "));
  return html`<svg class="day-bar" viewBox="0 0 1440 12" preserveAspectRatio="none" role="img"
    aria-label=${`${day}: ${words.join(", ") || emptyText}`} data-day=${day}>
    <rect class="day-bar-empty" x="0" y="0" width="1440" height="12" />
    ${periods.map((p) => {
      const x = minutesOf(p.start);
      const width = Math.max(0, minutesOf(p.end) - x);
      return html`<rect class=${`period mode-${p.mode || "armed"}`} x=${x} y="0" width=${width} height="12" />`;
    })}
  </svg>`;
}

function PeriodRow({ period, label, modes, onChange, onRemove }) {
  const edit = (key) => (e) => onChange({ ...period, [key]: e.currentTarget.value });
  return html`<li class="period-row">
    <input aria-label=${`${label} start`} value=${period.start} onInput=${edit("start")} inputmode="numeric" />
    <span aria-hidden="true">–</span>
    <input aria-label=${`${label} end`} value=${period.end} onInput=${edit("end")} inputmode="numeric" />
    ${modes &&
    html`<select aria-label=${`${label} type`} value=${period.mode} onChange=${edit("mode")}>
      ${modes.map(([value, text]) => html`<option value=${value}>${text}</option>`)}
    </select>`}
    <button type="button" class="plain" aria-label=${`Remove ${label}`} onClick=${onRemove}>Remove</button>
  </li>`;
}

/** The week with every day's periods replaced by copies of `day`'s (Hikvision's "copy to"). */
function copiedToAll(periods, day) {
  const own = periods.filter((p) => p.day === day);
  return DAYS.flatMap((other) => own.map((p) => ({ ...p, day: other })));
}

/**
 * The week of the form's field `fieldKey` (a list of periods). `modes` ([[value, label]]) gives
 * each period a type and a new period the first one; `legend` is drawn above the bars (a colour
 * key).
 */
export function WeekEditor({ form, fieldKey = "schedule", modes, legend, emptyText = "none" }) {
  const periods = form.values[fieldKey] || [];
  const change = (next) => form.set(fieldKey, next);
  const error = form.errors[fieldKey];
  const fresh = (day) => ({ day, start: "00:00", end: "24:00", ...(modes ? { mode: modes[0][0] } : {}) });
  return html`<fieldset class="schedule" aria-describedby=${error ? `${fieldKey}-error` : undefined}>
    <legend>Weekly schedule (times as HH:MM, 24:00 is midnight at the end of the day)</legend>
    ${error && html`<p id=${`${fieldKey}-error`} class="field-error" role="alert">${error}</p>`}
    ${legend}
    ${DAYS.map((day) => {
      const own = periods.map((p, i) => [p, i]).filter(([p]) => p.day === day);
      return html`<div class="schedule-day">
        <div class="schedule-head"><span class="day-name">${day}</span>
          <${DayBar} day=${day} periods=${own.map(([p]) => p)} modes=${modes} emptyText=${emptyText} /></div>
        <ul class="period-list">
          ${own.map(([p, i], n) => html`<${PeriodRow} period=${p} label=${`${day} period ${n + 1}`} modes=${modes}
            onChange=${(next) => change(periods.map((old, j) => (j === i ? next : old)))}
            onRemove=${() => change(periods.filter((_, j) => j !== i))} />`)}
        </ul>
        <div class="row-actions">
          <button type="button" class="plain" aria-label=${`Add a period on ${day}`}
            onClick=${() => change([...periods, fresh(day)])}>Add period</button>
          <button type="button" class="plain" aria-label=${`Copy ${day} to every day`}
            onClick=${() => change(copiedToAll(periods, day))}>Copy to every day</button>
        </div>
      </div>`;
    })}
  </fieldset>`;
}

// -- the arming schedules of events (Event/schedules/...: a TimeBlockList) ---------------------
const BLOCKS = "TimeBlockList";

function readTimeBlocks(root) {
  const list = elementAt(root, BLOCKS);
  const blocks = list ? [...list.children].filter((e) => e.localName === "TimeBlock") : [];
  return blocks.map((block) => ({
    day: DAYS[Number(textAt(block, "dayOfWeek")) - 1] || textAt(block, "dayOfWeek"),
    start: hhmm(textAt(block, "TimeRange/beginTime")),
    end: hhmm(textAt(block, "TimeRange/endTime")),
  }));
}

/** The periods as the list's TimeBlocks, the week replaced whole (as the device takes it). */
function writeTimeBlocks(root, periods) {
  const list = elementAt(root, BLOCKS, true);
  for (const old of [...list.children]) old.remove();
  for (const period of periods) {
    const block = root.ownerDocument.createElementNS(root.namespaceURI, "TimeBlock");
    list.appendChild(block);
    setText(block, "dayOfWeek", DAYS.indexOf(period.day) + 1);
    setText(block, "TimeRange/beginTime", `${period.start}:00`);
    setText(block, "TimeRange/endTime", `${period.end}:00`);
  }
}

/** The form field of an arming schedule document (`Schedule` with its `TimeBlockList`). */
export const ARMING_FIELDS = [
  {
    key: "schedule",
    label: "Arming schedule",
    aliases: ["TimeBlockList"],
    match: /TimeBlock|period/,
    read: readTimeBlocks,
    write: writeTimeBlocks,
    render: (form) => html`<${WeekEditor} form=${form} emptyText="not armed" />`,
  },
];

/** The arming schedule at `path` (Event/schedules/...) as its own form. */
export function ArmingForm({ path }) {
  const form = useIsapiForm(path, ARMING_FIELDS);
  return html`<h3>Arming schedule</h3>
    <${IsapiForm} form=${form} label="Arming schedule" />`;
}
