// Configuration → Image → Image settings: the sensor's picture controls (`/ISAPI/Image/channels/1`,
// ranges from its capabilities) next to a snapshot of the channel, fetched again after a save so
// the user sees the effect. The device shows only the parts its sensor has, and so does the page:
// a field whose element is not in the document is not drawn (and not sent: the device refuses a
// part the sensor lacks).
import { useState } from "preact/hooks";
import { Snapshot } from "./areas.js";
import { IsapiForm, elementAt, textAt, useIsapiForm } from "./form.js";
import { html } from "./ui.js";

const PATH = "/ISAPI/Image/channels/1";
const CAPABILITIES = `${PATH}/capabilities`;
const FLIP_STYLES = [
  ["LEFTRIGHT", "Mirror (left-right)"],
  ["UPDOWN", "Flip (up-down)"],
  ["CENTER", "Both (rotate 180°)"],
];

/** A field shown only when the device's document has its element (the sensor has it). */
function present(spec) {
  const read = (root) => {
    const found = elementAt(root, spec.path);
    if (!found) return null;
    return spec.type === "checkbox" ? found.textContent === "true" : found.textContent;
  };
  return { ...spec, read, show: (values) => values[spec.key] !== null && (!spec.show || spec.show(values)) };
}

const level = (key, label, path) => present({ key, label, path, type: "number" });
const choice = (key, label, path, options) => present({ key, label, path, type: "select", options });

const FIELDS = [
  level("brightnessLevel", "Brightness", "Color/brightnessLevel"),
  level("contrastLevel", "Contrast", "Color/contrastLevel"),
  level("saturationLevel", "Saturation", "Color/saturationLevel"),
  level("hueLevel", "Hue", "Color/hueLevel"),
  level("SharpnessLevel", "Sharpness", "Sharpness/SharpnessLevel"),
  present({ key: "flip", label: "Flip or mirror the picture", path: "ImageFlip/enabled", type: "checkbox", aliases: ["ImageFlip"] }),
  {
    key: "ImageFlipStyle",
    label: "Flip style",
    path: "ImageFlip/ImageFlipStyle",
    type: "select",
    // The document has no style while flipping is off; mirroring is the first the device offers.
    read: (root) => textAt(root, "ImageFlip/ImageFlipStyle") || "LEFTRIGHT",
    options: (caps) => {
      const offered = elementAt(caps, "ImageFlip/ImageFlipStyle")?.getAttribute("opt")?.split(",");
      return FLIP_STYLES.filter(([value]) => !offered || offered.includes(value));
    },
    show: (values) => values.flip === true,
  },
  choice("ExposureType", "Exposure", "Exposure/ExposureType"),
  choice("ShutterLevel", "Shutter (manual exposure time, s)", "Shutter/ShutterLevel"),
  level("GainLevel", "Gain", "Gain/GainLevel"),
  choice("WhiteBalanceStyle", "White balance", "WhiteBalance/WhiteBalanceStyle"),
  { ...choice("wdrMode", "Wide dynamic range (WDR)", "WDR/mode"), match: /<WDR\/mode>/ },
  level("WDRLevel", "WDR level", "WDR/WDRLevel"),
  { ...present({ key: "blc", label: "Backlight compensation (BLC)", path: "BLC/enabled", type: "checkbox" }), match: /BLC/ },
  { ...choice("dnrMode", "Noise reduction", "NoiseReduce/mode"), match: /<NoiseReduce\/mode>/ },
  level("generalLevel", "Noise reduction level", "NoiseReduce/GeneralMode/generalLevel"),
  choice("powerLineFrequencyMode", "Power line frequency", "powerLineFrequency/powerLineFrequencyMode"),
];

export function ImageSettingsPage() {
  const [version, setVersion] = useState(0);
  const form = useIsapiForm(PATH, FIELDS, {
    capabilities: CAPABILITIES,
    onSaved: () => setVersion((v) => v + 1),
  });
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Image settings</h2>
    <div class="image-layout">
      <${IsapiForm} form=${form} label="Image settings" />
      <${Snapshot} version=${version} alt="The channel's picture with these settings" />
    </div>
  </section>`;
}
