// Configuration → Storage → Capture: JPEG pictures to the card, timed (every so many seconds)
// and on events (a number of pictures at an interval), per channel. The device keeps one size and
// quality for both kinds, so the page shows them once and writes them into both blocks.
import { useEffect, useState } from "preact/hooks";
import { isapi } from "./api.js";
import { Chooser, IsapiForm, setText, textAt, useIsapiForm } from "./form.js";
import { html } from "./ui.js";

const TIMED = "timingCapture";
const EVENT = "eventCapture";
const BOTH = [TIMED, EVENT];

/** The sizes the pictures may have: those of the channel's streams ("1920x1080"). */
function useSizes(channel) {
  const [sizes, setSizes] = useState([]);
  useEffect(() => {
    isapi("GET", "/ISAPI/Streaming/channels").then((root) => {
      const mine = [...root.children].filter((s) => Math.floor(Number(textAt(s, "id")) / 100) === Number(channel));
      const found = mine.map((s) => `${textAt(s, "Video/videoResolutionWidth")}x${textAt(s, "Video/videoResolutionHeight")}`);
      setSizes([...new Set(found)]);
    }, () => setSizes([]));
  }, [channel]);
  return sizes;
}

function captureFields(sizes) {
  return [
    { key: "timedEnabled", path: `${TIMED}/enabled`, label: "Timed capture", type: "checkbox", aliases: ["timed_enabled"] },
    {
      key: "timedInterval",
      path: `${TIMED}/compress/captureInterval`,
      label: "Interval (seconds)",
      type: "number",
      scale: 1000,
      aliases: ["timed_interval_s"],
      // The device's word for this field's refusals: "the timed captureInterval ...".
      match: /timed captureInterval/,
      hint: "1 s to 7 days, whole seconds",
    },
    {
      key: "size",
      label: "Picture size",
      type: "select",
      aliases: ["pictureWidth", "pictureHeight", "stream"],
      // The size in use is offered even before the streams' sizes are known.
      options: (caps, values) => [...new Set([values.size, ...sizes])].map((s) => [s, s]),
      read: (root) => `${textAt(root, `${TIMED}/compress/pictureWidth`)}x${textAt(root, `${TIMED}/compress/pictureHeight`)}`,
      write: (root, value) => {
        const [width, height] = value.split("x");
        for (const kind of BOTH) {
          setText(root, `${kind}/compress/pictureWidth`, width);
          setText(root, `${kind}/compress/pictureHeight`, height);
        }
      },
    },
    {
      key: "quality",
      label: "Quality (JPEG)",
      type: "number",
      hint: "1 to 100",
      read: (root) => textAt(root, `${TIMED}/compress/quality`),
      write: (root, value) => BOTH.forEach((kind) => setText(root, `${kind}/compress/quality`, value)),
    },
    { key: "eventEnabled", path: `${EVENT}/enabled`, label: "Event-triggered capture", type: "checkbox", aliases: ["event_enabled"] },
    {
      key: "eventCount",
      path: `${EVENT}/compress/captureNumber`,
      label: "Pictures per event",
      type: "number",
      aliases: ["event_count"],
      hint: "1 to 10",
    },
    {
      key: "eventInterval",
      path: `${EVENT}/compress/captureInterval`,
      label: "Interval between an event's pictures (ms)",
      type: "number",
      aliases: ["event_interval_ms"],
      hint: "100 to 60000",
    },
  ];
}

function CaptureForm({ channel }) {
  const sizes = useSizes(channel);
  const form = useIsapiForm(`/ISAPI/Snapshot/channels/${channel}`, captureFields(sizes));
  return html`<${IsapiForm} form=${form} label="Capture">
    <p class="hint">Pictures go to the card, which must be formatted; Playback shows them by day.</p>
  <//>`;
}

export function CapturePage() {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Capture</h2>
    <${Chooser} id="channel" label="Channel" list="/ISAPI/Snapshot/channels"
      name=${(item) => `Camera ${textAt(item, "id")}`}>
      ${(channel) => html`<${CaptureForm} key=${channel} channel=${channel} />`}
    <//>
  </section>`;
}
