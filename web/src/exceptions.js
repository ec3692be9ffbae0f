// Configuration → Events → Exceptions: the linkage of each exception the device lists among its
// triggers (those with no channel or input: a full or failed card, a broken link...). They are
// always armed, so they have no schedule.
import { Chooser, elementAt } from "./form.js";
import { LinkageForm } from "./linkage.js";
import { html } from "./ui.js";

const NAMES = {
  diskfull: "Card full",
  diskerror: "Card error",
  nicbroken: "Network disconnected",
  ipconflict: "IP address conflict",
  illaccess: "Illegal login (address locked out)",
};

const isException = (trigger) =>
  !elementAt(trigger, "videoInputChannelID") && !elementAt(trigger, "inputIOPortID");

function nameOf(trigger) {
  const id = elementAt(trigger, "id").textContent;
  return NAMES[id.toLowerCase()] || id; // one this page does not know yet goes by its id
}

export function ExceptionsPage() {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Exceptions</h2>
    <${Chooser} id="exception" label="Exception" list="/ISAPI/Event/triggers" name=${nameOf} only=${isException}>
      ${(id) => html`<${LinkageForm} key=${id} trigger=${id} />`}
    <//>
  </section>`;
}
