// Configuration → System → Security: the IP address filter (who may reach the device at all) and
// the illegal login lock (how many wrong passwords lock an address out, and for how long).
import { IsapiForm, elementAt, removeAt, setText, textAt, useIsapiForm } from "./form.js";
import { html } from "./ui.js";

const LIST = "IPFilterAddressList";

/** One filter entry as the user writes it: "10.0.0.5", "10.0.0.1-10.0.0.9" or "10.0.0.0/24". */
function entryText(entry) {
  const kind = textAt(entry, "addressFilterType");
  if (kind === "range") return `${textAt(entry, "AddressRange/startIPAddress")}-${textAt(entry, "AddressRange/endIPAddress")}`;
  if (kind === "mask") {
    const prefix = textAt(entry, "Mask/prefixLength") || textAt(entry, "Mask/subnetMask");
    return `${textAt(entry, "Mask/ipAddress")}/${prefix}`;
  }
  return textAt(entry, "ipAddress");
}

/** An <IPFilterAddress> of the line's kind; the device judges the addresses themselves. */
function writeEntry(list, line, index) {
  const entry = list.ownerDocument.createElementNS(list.namespaceURI, "IPFilterAddress");
  list.appendChild(entry);
  setText(entry, "id", index);
  if (line.includes("-")) {
    const [first, last] = line.split("-", 2).map((part) => part.trim());
    setText(entry, "addressFilterType", "range");
    setText(entry, "AddressRange/startIPAddress", first);
    setText(entry, "AddressRange/endIPAddress", last);
  } else if (line.includes("/")) {
    const [address, mask] = line.split("/", 2).map((part) => part.trim());
    setText(entry, "addressFilterType", "mask");
    setText(entry, "Mask/ipAddress", address);
    setText(entry, /^\d+$/.test(mask) ? "Mask/prefixLength" : "Mask/subnetMask", mask);
  } else {
    setText(entry, "addressFilterType", "single");
    setText(entry, "ipAddress", line);
  }
}

function readEntries(root) {
  const list = elementAt(root, LIST);
  return list ? [...list.children].map(entryText).join("\n") : "";
}

function writeEntries(root, value) {
  removeAt(root, LIST);
  const list = elementAt(root, LIST, true);
  const lines = value.split(/[\n,]/).map((line) => line.trim()).filter(Boolean);
  lines.forEach((line, i) => writeEntry(list, line, i + 1));
}

/** The addresses, one a line: a textarea, labelled, its refusal under it. */
function EntriesField(form) {
  const error = form.errors.entries;
  const described = ["entries-hint", error ? "entries-error" : ""].filter(Boolean).join(" ");
  return html`<div class="field">
    <label for="entries">Addresses</label>
    <textarea id="entries" name="entries" rows="5" aria-invalid=${error ? "true" : "false"}
      aria-describedby=${described} value=${form.values.entries}
      onInput=${(e) => form.set("entries", e.currentTarget.value)}></textarea>
    <p id="entries-hint" class="hint">One a line: an address (192.168.1.20), a range
      (192.168.1.20-192.168.1.40) or a network (192.168.1.0/24); at most 64.</p>
    ${error && html`<p id="entries-error" class="field-error" role="alert">${error}</p>`}
  </div>`;
}

const filterOn = (values) => values.mode !== "off";
const FILTER_FIELDS = [
  {
    key: "mode",
    label: "IP address filter",
    type: "select",
    options: [["off", "Off"], ["allow", "Allow only the addresses below"], ["deny", "Deny the addresses below"]],
    aliases: ["permissionType", "enabled"],
    read: (root) => (textAt(root, "enabled") === "true" ? textAt(root, "permissionType") || "allow" : "off"),
    write: (root, value) => {
      setText(root, "enabled", value === "off" ? "false" : "true");
      if (value !== "off") setText(root, "permissionType", value);
    },
  },
  { key: "entries", label: "Addresses", aliases: ["IPFilterAddress", "AddressRange", "Mask"], show: filterOn, render: EntriesField, read: readEntries, write: writeEntries },
  // The device does not tell the page the address it sees the browser at (a proxy or NAT may
  // change it), so the page cannot check the list itself: the user confirms it instead.
  {
    key: "ownAddress",
    label: "The address I use this page from is allowed by this filter",
    type: "checkbox",
    show: filterOn,
    read: () => false,
    write: () => {},
  },
];

function checkFilter(values) {
  if (filterOn(values) && !values.ownAddress) {
    return { ownAddress: "Make sure your own address is allowed, then tick this: a filter that shuts it out locks this page out of the device." };
  }
  return null;
}

const LOCK_FIELDS = [
  { key: "enabled", label: "Lock an address after wrong passwords", type: "checkbox", aliases: ["lockout_enabled"] },
  {
    key: "maxIllegalLoginTimes",
    label: "Wrong passwords before the lock",
    type: "number",
    aliases: ["lockout_attempts"],
    hint: "3 to 20",
    show: (values) => values.enabled,
  },
  {
    key: "resumeTime",
    label: "Lock time (minutes)",
    type: "number",
    aliases: ["lockout_minutes"],
    hint: "1 to 120",
    show: (values) => values.enabled,
  },
];

export function SecurityPage() {
  const filter = useIsapiForm("/ISAPI/Security/IPFilter", FILTER_FIELDS, { check: checkFilter });
  const lock = useIsapiForm("/ISAPI/Security/illegalLoginLock", LOCK_FIELDS);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Security</h2>
    <h3>IP address filter</h3>
    <p class="hint">The device answers no request (web, ISAPI, RTSP) from an address the filter
      shuts out, this page's included.</p>
    <${IsapiForm} form=${filter} label="IP address filter" />
    <h3>Illegal login lock</h3>
    <${IsapiForm} form=${lock} label="Illegal login lock" />
  </section>`;
}
