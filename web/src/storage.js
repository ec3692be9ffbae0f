// Configuration → Storage: the cards (state, capacity, format with its progress), the quotas, and
// each record track's settings with its weekly schedule drawn as one bar a day (week.js).
import { useEffect, useState } from "preact/hooks";
import { isapi } from "./api.js";
import { Chooser, IsapiForm, elementAt, setText, textAt, useIsapiForm } from "./form.js";
import { Progress, TableHead, html, sleep } from "./ui.js";
import { WeekEditor, hhmm } from "./week.js";

const HDDS = "/ISAPI/ContentMgmt/Storage/hdd";
const MODES = [
  ["CMR", "Continuous"],
  ["MOTION", "Motion"],
  ["ALARM", "Alarm input"],
  ["ALARMANDMOTION", "Motion and alarm"],
  ["EDR", "Event (any)"],
  ["AllEvent", "All events"],
];

// -- cards ----------------------------------------------------------------------------------
function cardOf(hdd) {
  const read = (name) => textAt(hdd, name);
  return { id: read("id"), name: read("hddName"), type: read("hddType"), status: read("status"),
    capacity: read("capacity"), free: read("freeSpace"), property: read("property") };
}

/** Format card `id` and follow formatStatus until it is done; `onProgress(percent)` meanwhile. */
async function format(id, onProgress) {
  await isapi("PUT", `${HDDS}/${id}/format`);
  for (;;) {
    const status = await isapi("GET", `${HDDS}/${id}/formatStatus`);
    const percent = Number(textAt(status, "percent"));
    onProgress(percent);
    // The device leaves "formating" while it mounts the new file system and only then says 100
    // (or 0 for a failure): anything in between is still under way.
    const settled = percent === 100 || percent === 0;
    if (textAt(status, "formating") !== "true" && settled) return percent === 100;
    await sleep(500);
  }
}

function CardRow({ card, onFormat }) {
  return html`<tr>
    <td>${card.name}</td><td>${card.type}</td><td data-status>${card.status}</td>
    <td>${card.capacity} MB</td><td>${card.free} MB</td><td>${card.property}</td>
    <td><button type="button" class="plain danger" aria-label=${`Format ${card.name}`}
      onClick=${() => onFormat(card)}>Format</button></td>
  </tr>`;
}

function Cards() {
  const [cards, setCards] = useState([]);
  const [job, setJob] = useState(null); // { name, percent, done, error }
  const load = () => isapi("GET", HDDS).then((list) => setCards([...list.children].map(cardOf)));
  const failed = (e) => setJob({ error: e.message });
  useEffect(() => {
    load().catch(failed);
  }, []);

  async function formatCard(card) {
    if (!window.confirm(`Format ${card.name}? Everything on it is erased.`)) return;
    const progress = (percent) => setJob({ name: card.name, percent });
    try {
      progress(0);
      const ok = await format(card.id, progress);
      await load();
      const outcome = ok ? { done: "Formatted." } : { error: "The format failed." };
      setJob({ name: card.name, percent: ok ? 100 : 0, ...outcome });
    } catch (error) {
      failed(error);
    }
  }

  return html`<div class="table-scroll"><table class="list">
      <caption class="sr-only">Cards</caption>
      <${TableHead} columns=${["Name", "Type", "Status", "Capacity", "Free", "Property", "Actions"]} />
      <tbody>${cards.map((card) => html`<${CardRow} card=${card} onFormat=${formatCard} />`)}</tbody>
    </table></div>
    ${job?.name &&
    html`<${Progress} id="format-progress" label=${`Formatting ${job.name}`} percent=${job.percent} />`}
    ${job?.error && html`<p class="field-error" role="alert">${job.error}</p>`}
    <p role="status" class="saved">${job?.done || ""}</p>`;
}

const QUOTA_FIELDS = [
  { key: "videoQuotaRatio", label: "Recordings (% of the card)", type: "number", hint: "0 to 100",
    aliases: ["record_quota_percent"] },
  { key: "pictureQuotaRatio", label: "Pictures (% of the card)", type: "number", hint: "0 to 100",
    aliases: ["picture_quota_percent"] },
];

export function StoragePage() {
  // One quota setting covers every card (the device says so); it is read and written as card 1's.
  const quota = useIsapiForm("/ISAPI/ContentMgmt/Storage/quota/1", QUOTA_FIELDS);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Storage management</h2>
    <${Cards} />
    <h3>Quotas</h3>
    <${IsapiForm} form=${quota} label="Quotas" />
  </section>`;
}

// -- record schedule ------------------------------------------------------------------------
const BLOCK = "TrackSchedule/ScheduleBlockList/ScheduleBlock";

function readPeriods(root) {
  const block = elementAt(root, BLOCK);
  const actions = block ? [...block.children].filter((e) => e.localName === "ScheduleAction") : [];
  return actions
    .filter((action) => textAt(action, "Actions/Record") !== "false")
    .map((action) => ({
      day: textAt(action, "ScheduleActionStartTime/DayOfWeek"),
      start: hhmm(textAt(action, "ScheduleActionStartTime/TimeOfDay")),
      end: hhmm(textAt(action, "ScheduleActionEndTime/TimeOfDay")),
      mode: textAt(action, "Actions/ActionRecordingMode"),
    }));
}

/** The periods as the block's ScheduleActions, in Hikvision's shape (a period ends on its day). */
function writePeriods(root, periods) {
  const block = elementAt(root, BLOCK, true);
  for (const old of [...block.children].filter((e) => e.localName === "ScheduleAction")) old.remove();
  periods.forEach((period, index) => {
    const action = root.ownerDocument.createElementNS(root.namespaceURI, "ScheduleAction");
    block.appendChild(action);
    setText(action, "id", index + 1);
    setText(action, "ScheduleActionStartTime/DayOfWeek", period.day);
    setText(action, "ScheduleActionStartTime/TimeOfDay", `${period.start}:00`);
    setText(action, "ScheduleActionEndTime/DayOfWeek", period.day);
    setText(action, "ScheduleActionEndTime/TimeOfDay", `${period.end}:00`);
    setText(action, "Actions/Record", "true");
    setText(action, "Actions/ActionRecordingMode", period.mode);
  });
}

const LEGEND = html`<p class="legend" aria-hidden="true"><span class="swatch continuous"></span> Continuous
  <span class="swatch event"></span> Event (motion, alarm)</p>`;

function ScheduleEditor({ form }) {
  return html`<${WeekEditor} form=${form} modes=${MODES} legend=${LEGEND} emptyText="no recording" />`;
}

const EXTENSION = "CustomExtensionList/CustomExtension";
const TRACK_FIELDS = [
  { key: "enableSchedule", path: `${EXTENSION}/enableSchedule`, label: "Record on the schedule", type: "checkbox" },
  { key: "PreRecordTimeSeconds", path: `${EXTENSION}/PreRecordTimeSeconds`, label: "Pre-record (seconds)",
    type: "number" },
  { key: "PostRecordTimeSeconds", path: `${EXTENSION}/PostRecordTimeSeconds`, label: "Post-record (seconds)",
    type: "number" },
  { key: "LoopEnable", label: "Overwrite the oldest recordings when the card is full", type: "checkbox",
    aliases: ["overwrite"] },
  {
    key: "schedule",
    label: "Weekly schedule",
    aliases: ["TrackSchedule"],
    match: /ScheduleAction|periods/,
    read: readPeriods,
    write: writePeriods,
    render: (form) => html`<${ScheduleEditor} form=${form} />`,
  },
];

function TrackForm({ id }) {
  const path = `/ISAPI/ContentMgmt/record/tracks/${id}`;
  const form = useIsapiForm(path, TRACK_FIELDS, { capabilities: `${path}/capabilities` });
  return html`<${IsapiForm} form=${form} label="Record schedule" />`;
}

export function RecordSchedulePage() {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Record schedule</h2>
    <${Chooser} id="track" label="Track" list="/ISAPI/ContentMgmt/record/tracks"
      name=${(item) => `Track ${textAt(item, "id")} (stream ${textAt(item, "Channel")})`}>
      ${(id) => html`<${TrackForm} key=${id} id=${id} />`}
    <//>
  </section>`;
}
