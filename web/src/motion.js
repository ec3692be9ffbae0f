// Configuration → Events → Motion detection: on or off, the areas drawn on the picture (areas.js)
// each with its sensitivity and proportion, or the whole picture (the grid), whether motion is
// seen now (the alertStream), the arming schedule and the linkage.
import { AreaEditor, THOUSANDTHS, appendElement, regionRect, writeRegion } from "./areas.js";
import { EventPage } from "./events.js";
import { IsapiForm, capsAt, elementAt, setText, textAt, useIsapiForm } from "./form.js";
import { useMotion } from "./live.js";
import { Field, html } from "./ui.js";

const PATH = "/ISAPI/System/Video/inputs/channels/1/motionDetection";
const LIST = "MotionDetectionRegionList";
const REGION_CAPS = `${LIST}/MotionDetectionRegion`;
// A new area's settings: the middle of the sensitivity range, and 5 % of the area to change
// (the device's own default proportion); the night set starts as the day's.
const NEW_AREA = { sensitivity: "50", proportion: "5", nightSensitivity: "50", nightProportion: "5" };
// Each area's settings: [key, the region's element, words, only with the day/night switch on].
const AREA_SETTINGS = [
  ["sensitivity", "sensitivityLevel", "sensitivity", false],
  ["proportion", "detectionThreshold", "proportion (% of the area that must change)", false],
  ["nightSensitivity", "nightSensitivityLevel", "night sensitivity", true],
  ["nightProportion", "nightDetectionThreshold", "night proportion (%)", true],
];

function regionsOf(root) {
  const list = elementAt(root, LIST);
  return list ? [...list.children].filter((e) => e.localName === "MotionDetectionRegion") : [];
}

function readAreas(root) {
  return regionsOf(root)
    .filter((region) => textAt(region, "enabled") !== "false")
    .map((region) => ({
      ...regionRect(region, THOUSANDTHS),
      ...Object.fromEntries(AREA_SETTINGS.map(([key, element]) => [key, textAt(region, element)])),
    }));
}

/** The drawn areas as the region list, numbered from 1 in their order; the rest is dropped. */
function writeAreas(root, areas) {
  const list = elementAt(root, LIST, true);
  for (const old of [...list.children]) old.remove();
  areas.forEach((area, index) => {
    const region = appendElement(list, "MotionDetectionRegion");
    appendElement(region, "id", index + 1);
    appendElement(region, "enabled", "true");
    for (const [key, element] of AREA_SETTINGS) appendElement(region, element, area[key]);
    writeRegion(region, area, THOUSANDTHS);
  });
}

// "<MotionDetectionRegion 2/sensitivityLevel>: 150 is above the maximum 100": area 2's field.
const REGION_REFUSAL = /<MotionDetectionRegion (\d+)\/(\w+)>:?\s*(.*)/;

function AreaSettings({ form, index }) {
  const area = form.values.areas[index];
  const dayNight = form.values.switchType === "schedule";
  const refusal = REGION_REFUSAL.exec(form.errors.areas || "");
  const change = (key, value) =>
    form.set("areas", form.values.areas.map((a, i) => (i === index ? { ...a, [key]: value } : a)));
  return html`<fieldset class="area-settings">
    <legend>Area ${index + 1}</legend>
    ${AREA_SETTINGS.filter(([, , , night]) => !night || dayNight).map(([key, element, words]) => {
      const range = capsAt(form.caps, `${REGION_CAPS}/${element}`);
      const mine = refusal && Number(refusal[1]) === index + 1 && refusal[2] === element;
      const id = `area-${index + 1}-${key}`;
      return html`<${Field} id=${id} label=${`Area ${index + 1} ${words}`} type="number" value=${area[key]}
        min=${range.min} max=${range.max} error=${mine ? `${words[0].toUpperCase()}${words.slice(1)}: ${refusal[3]}` : ""}
        hint=${range.min !== undefined && html`<p id=${`${id}-hint`} class="hint">${range.min} to ${range.max}</p>`}
        onInput=${(e) => change(key, e.currentTarget.value)} />`;
    })}
  </fieldset>`;
}

function AreasField({ form }) {
  const areas = form.values.areas || [];
  const refusal = form.errors.areas;
  const placed = REGION_REFUSAL.test(refusal || ""); // shown next to its area's field instead
  const max = Number(elementAt(form.caps, LIST)?.getAttribute("size")) || 8;
  return html`<${AreaEditor} id="motion-areas" label="Motion areas" name="Area" rects=${areas} max=${max}
      screen=${THOUSANDTHS} make=${(rect) => ({ ...rect, ...NEW_AREA })}
      onChange=${(next) => form.set("areas", next)} error=${placed ? "" : refusal} />
    ${areas.map((_, index) => html`<${AreaSettings} form=${form} index=${index} />`)}`;
}

const SWITCH = "MotionDetectionSwitch";
const SWITCH_TYPES = { off: "One set of sensitivities all day", schedule: "Day and night sets, daily" };
const timeSpec = (key, element, label) => ({
  key, label, path: `${SWITCH}/Schedule/TimeRange/${element}`, aliases: [element],
  read: (root) => textAt(root, `${SWITCH}/Schedule/TimeRange/${element}`).slice(0, 5),
  write: (root, value) => setText(root, `${SWITCH}/Schedule/TimeRange/${element}`, `${value}:00`),
  show: (values) => values.regionType === "roi" && values.switchType === "schedule",
});
const REGION_TYPES = { roi: "Areas drawn on the picture", grid: "The whole picture (grid)" };
const FIELDS = [
  { key: "enabled", label: "Enable motion detection", type: "checkbox" },
  { key: "regionType", label: "Detect in", type: "select",
    options: (caps) => (capsAt(caps, "regionType").opt || ["roi", "grid"]).map((v) => [v, REGION_TYPES[v] || v]) },
  {
    key: "areas",
    label: "Motion areas",
    aliases: ["MotionDetectionRegion", "RegionCoordinatesList"],
    read: readAreas,
    write: writeAreas,
    show: (values) => values.regionType === "roi",
    render: (form) => html`<${AreasField} form=${form} />`,
  },
  // Hikvision's day/night switch of the areas: a second set of sensitivities from "night starts"
  // to "day starts" each day (`auto` needs a light sensor the device lacks).
  { key: "switchType", path: `${SWITCH}/type`, label: "Day and night", type: "select",
    options: (caps) => (capsAt(caps, `${SWITCH}/type`).opt || ["off", "schedule"]).map((v) => [v, SWITCH_TYPES[v] || v]),
    show: (values) => values.regionType === "roi", aliases: ["MotionDetectionSwitch"] },
  timeSpec("dayStarts", "beginTime", "Day starts at (HH:MM)"),
  timeSpec("nightStarts", "endTime", "Night starts at (HH:MM)"),
  // The grid mode is offered as the whole picture: its map (set over ISAPI) is kept as it is.
  { key: "gridSensitivity", path: "MotionDetectionLayout/sensitivityLevel", label: "Sensitivity",
    type: "number", hint: "0 turns detection off", show: (values) => values.regionType === "grid" },
];

function MotionNow() {
  const active = useMotion();
  return html`<p class="motion-now">Motion now: <strong id="motion-now" role="status"
    data-active=${active ? "true" : "false"}>${active ? "motion detected" : "none"}</strong></p>`;
}

export function MotionPage() {
  const form = useIsapiForm(PATH, FIELDS, { capabilities: `${PATH}/capabilities` });
  return html`<${EventPage} title="Motion detection" trigger="VMD-1"
    schedule="/ISAPI/Event/schedules/motionDetections/VMD_video1">
    <${MotionNow} />
    <${IsapiForm} form=${form} label="Motion detection" />
  <//>`;
}
