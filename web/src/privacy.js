// Configuration → Image → Privacy masks: up to 8 black rectangles drawn on the channel's picture
// (areas.js), in Hikvision's 704x576 screen (isapi_image.py). The whole PrivacyMaskRegionList is
// written back: the device replaces its masks with the list sent.
import { useState } from "preact/hooks";
import { AreaEditor, MASK_SCREEN, appendElement, regionRect, writeRegion } from "./areas.js";
import { IsapiForm, elementAt, useIsapiForm } from "./form.js";
import { html } from "./ui.js";

const PATH = "/ISAPI/System/Video/inputs/channels/1/privacyMask";
const MAX_MASKS = 8;

function readMasks(root) {
  const list = elementAt(root, "PrivacyMaskRegionList");
  if (!list) return [];
  return [...list.children]
    .filter((region) => elementAt(region, "enabled")?.textContent !== "false")
    .map((region) => regionRect(region, MASK_SCREEN))
    .filter(Boolean);
}

function writeMasks(root, rects) {
  elementAt(root, "PrivacyMaskRegionList")?.remove();
  const list = appendElement(root, "PrivacyMaskRegionList");
  rects.forEach((rect, index) => {
    const region = appendElement(list, "PrivacyMaskRegion");
    appendElement(region, "id", index + 1);
    appendElement(region, "enabled", "true");
    writeRegion(region, rect, MASK_SCREEN);
    appendElement(region, "maskType", "black");
  });
}

function fields(version) {
  return [
    { key: "enabled", label: "Enable privacy masks", type: "checkbox" },
    {
      key: "masks",
      label: "Masks",
      read: readMasks,
      write: writeMasks,
      aliases: ["PrivacyMaskRegionList", "PrivacyMaskRegion", "RegionCoordinatesList"],
      render: (form) => html`<${AreaEditor} id="masks" label="Masks (black on the picture)" name="Mask"
        rects=${form.values.masks || []} onChange=${(rects) => form.set("masks", rects)}
        screen=${MASK_SCREEN} max=${MAX_MASKS} version=${version} error=${form.errors.masks} />`,
    },
  ];
}

export function PrivacyMaskPage() {
  // The picture is fetched again after a save, so the user sees the masks the device drew.
  const [version, setVersion] = useState(0);
  const form = useIsapiForm(PATH, fields(version), { onSaved: () => setVersion((v) => v + 1) });
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Privacy masks</h2>
    <${IsapiForm} form=${form} label="Privacy masks" />
  </section>`;
}
