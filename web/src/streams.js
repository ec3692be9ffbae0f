// Configuration → Video/Audio → Streams: the main and sub stream's encoder settings, with the
// choices and ranges the device's capabilities give (/ISAPI/Streaming/channels/{id}/capabilities).
import { Chooser, IsapiForm, capsAt, removeAt, setText, textAt, useIsapiForm } from "./form.js";
import { StreamingStatus } from "./status.js";
import { html } from "./ui.js";

const WIDTH = "Video/videoResolutionWidth";
const HEIGHT = "Video/videoResolutionHeight";
const CONTROL = "Video/videoQualityControlType";
const BIT_RATE = { CBR: "Video/constantBitRate", VBR: "Video/vbrUpperCap" };

/** "1920x1080" pairs: the capabilities list widths and heights side by side. */
function resolutions(caps, values) {
  const widths = capsAt(caps, WIDTH).opt || [];
  const heights = capsAt(caps, HEIGHT).opt || [];
  const pairs = widths.map((w, i) => `${w}x${heights[i]}`);
  return [...new Set([values.resolution, ...pairs])].map((size) => [size, size.replace("x", " × ")]);
}

function bitRatePath(root) {
  return textAt(root, CONTROL) === "CBR" ? BIT_RATE.CBR : BIT_RATE.VBR;
}

const FIELDS = [
  { key: "videoCodecType", path: "Video/videoCodecType", label: "Video encoding", type: "select" },
  {
    key: "resolution",
    label: "Resolution",
    type: "select",
    aliases: ["width", "height", "videoResolutionWidth", "videoResolutionHeight"],
    options: resolutions,
    read: (root) => `${textAt(root, WIDTH)}x${textAt(root, HEIGHT)}`,
    write: (root, value) => {
      const [width, height] = value.split("x");
      setText(root, WIDTH, width);
      setText(root, HEIGHT, height);
    },
  },
  // The device counts frame rates in hundredths (maxFrameRate 2500 = 25 fps).
  {
    key: "maxFrameRate",
    path: "Video/maxFrameRate",
    label: "Frame rate (fps)",
    type: "number",
    scale: 100,
    aliases: ["fps"],
  },
  {
    key: "videoQualityControlType",
    path: CONTROL,
    label: "Bit rate type",
    type: "select",
    options: [["CBR", "Constant (CBR)"], ["VBR", "Variable (VBR)"]],
  },
  {
    // One field for both: the constant rate under CBR, the upper cap under VBR.
    key: "bitRate",
    label: "Bit rate (kbps)",
    type: "number",
    aliases: ["max_bitrate_kbps", "constantBitRate", "vbrUpperCap"],
    read: (root) => textAt(root, bitRatePath(root)),
    write: (root, value, values) => {
      removeAt(root, BIT_RATE.CBR);
      removeAt(root, BIT_RATE.VBR);
      setText(root, BIT_RATE[values.videoQualityControlType] || BIT_RATE.VBR, value);
    },
    rangeOf: (caps) => capsAt(caps, bitRatePath(caps)),
  },
  { key: "fixedQuality", path: "Video/fixedQuality", label: "Video quality (1–100)", type: "number",
    aliases: ["quality"] },
  { key: "GovLength", path: "Video/GovLength", label: "I-frame interval (GOP, frames)", type: "number",
    aliases: ["gop"] },
  {
    key: "H264Profile",
    path: "Video/H264Profile",
    label: "Profile",
    type: "select",
    aliases: ["profile"],
    show: (values) => values.videoCodecType === "H.264",
  },
];

function StreamForm({ id }) {
  const path = `/ISAPI/Streaming/channels/${id}`;
  const form = useIsapiForm(path, FIELDS, { capabilities: `${path}/capabilities` });
  return html`<${IsapiForm} form=${form} label="Stream settings" />`;
}

export function StreamsPage() {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Streams</h2>
    <${Chooser} id="stream" label="Stream" list="/ISAPI/Streaming/channels"
      name=${(item) => `${textAt(item, "channelName")} (${textAt(item, "id")})`}>
      ${(id) => html`<${StreamForm} key=${id} id=${id} />`}
    <//>
    <${StreamingStatus} />
  </section>`;
}
