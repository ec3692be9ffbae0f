// Configuration → Events: every event tab is the event's own settings, its arming schedule
// (week.js) and its linkage (linkage.js), each a form with its own Save: they are three ISAPI
// documents, and a refusal of one must not lose the edits of another. This module holds that
// frame and the tabs that need little more: tampering (its area drawn with areas.js) and video
// loss.
import { AreaEditor, THOUSANDTHS, regionRect, writeRegion } from "./areas.js";
import { IsapiForm, elementAt, useIsapiForm } from "./form.js";
import { LinkageForm } from "./linkage.js";
import { html } from "./ui.js";
import { ArmingForm } from "./week.js";

const CHANNEL = "/ISAPI/System/Video/inputs/channels/1";

/** An event's arming schedule (when it has one) and linkage. */
export function EventRules({ schedule, trigger }) {
  return html`${schedule && html`<${ArmingForm} key=${schedule} path=${schedule} />`}
    <${LinkageForm} key=${trigger} trigger=${trigger} />`;
}

/** An event's page: its heading, its settings (children), schedule and linkage. */
export function EventPage({ title, schedule, trigger, children }) {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">${title}</h2>
    ${children}
    <${EventRules} schedule=${schedule} trigger=${trigger} />
  </section>`;
}

const TAMPER_REGION = "TamperDetectionRegionList/TamperDetectionRegion";
const WHOLE_PICTURE = { left: 0, top: 0, right: 1000, bottom: 1000 };

function readTamperArea(root) {
  const region = elementAt(root, TAMPER_REGION);
  const rect = region && regionRect(region, THOUSANDTHS);
  return rect ? [rect] : [];
}

// The device watches one area; none drawn is the whole picture (what it starts with).
function writeTamperArea(root, rects) {
  writeRegion(elementAt(root, TAMPER_REGION, true), rects[0] || WHOLE_PICTURE, THOUSANDTHS);
}

const TAMPER_FIELDS = [
  { key: "enabled", label: "Enable tampering detection (the view covered)", type: "checkbox" },
  { key: "tamperSensitivity", path: `${TAMPER_REGION}/sensitivityLevel`, label: "Sensitivity",
    type: "number", hint: "0 to 100" },
  { key: "tamperArea", label: "Tampering area", aliases: ["RegionCoordinatesList", "RegionCoordinates"],
    read: readTamperArea, write: writeTamperArea,
    render: (form) => html`<${AreaEditor} id="tamper-area" label="Tampering area (none: the whole picture)"
      name="Area" max=${1} screen=${THOUSANDTHS} rects=${form.values.tamperArea || []}
      onChange=${(next) => form.set("tamperArea", next)} error=${form.errors.tamperArea} />` },
];

export function TamperingPage() {
  const form = useIsapiForm(`${CHANNEL}/tamperDetection`, TAMPER_FIELDS);
  return html`<${EventPage} title="Tampering" trigger="tamper-1"
    schedule="/ISAPI/Event/schedules/tamperDetections/Tamperdetection_video1">
    <${IsapiForm} form=${form} label="Tampering" />
  <//>`;
}

const VIDEO_LOSS_FIELDS = [
  { key: "enabled", label: "Enable video loss detection", type: "checkbox" },
  { key: "timeoutSeconds", label: "Video loss after (seconds without a picture)", type: "number",
    hint: "1 to 60" },
];

export function VideoLossPage() {
  const form = useIsapiForm(`${CHANNEL}/videoLoss`, VIDEO_LOSS_FIELDS);
  return html`<${EventPage} title="Video loss" trigger="videoloss-1"
    schedule="/ISAPI/Event/schedules/videolosses/Videoloss_video1">
    <${IsapiForm} form=${form} label="Video loss" />
  <//>`;
}

// Defocus and scene change: Vigil's detectors on the same pictures, each on/off and a sensitivity.
const smartFields = (what) => [
  { key: "enabled", label: `Enable ${what}`, type: "checkbox" },
  { key: "sensitivityLevel", label: "Sensitivity", type: "number", hint: "0 to 100" },
];
const DEFOCUS_FIELDS = smartFields("defocus detection (the picture no longer sharp)");
const SCENE_CHANGE_FIELDS = smartFields("scene change detection (the camera moved)");

function SmartPage({ title, path, fields, schedule, trigger }) {
  const form = useIsapiForm(path, fields);
  return html`<${EventPage} title=${title} trigger=${trigger} schedule=${schedule}>
    <${IsapiForm} form=${form} label=${title} />
  <//>`;
}

export function DefocusPage() {
  return html`<${SmartPage} title="Defocus" path="/ISAPI/Smart/DefocusDetection/1" trigger="defocus-1"
    fields=${DEFOCUS_FIELDS} schedule="/ISAPI/Event/schedules/defocusDetections/defocus_video1" />`;
}

export function SceneChangePage() {
  return html`<${SmartPage} title="Scene change" path="/ISAPI/Smart/SceneChangeDetection/1"
    trigger="scenechangedetection-1" fields=${SCENE_CHANGE_FIELDS}
    schedule="/ISAPI/Event/schedules/sceneChangeDetections/scenechangedetection_video1" />`;
}
