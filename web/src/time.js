// Configuration → System → Time: the mode (NTP or manual), the time zone, the device's clock, and
// the NTP server (/ISAPI/System/time, /ISAPI/System/time/ntpServers/1).
import { IsapiForm, removeAt, setText, textAt, useIsapiForm } from "./form.js";
import { html } from "./ui.js";

/** Now as the device's localTime: ISO 8601 with this computer's UTC offset. */
function computerTime() {
  const now = new Date();
  const offset = -now.getTimezoneOffset();
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const local = new Date(now.getTime() + offset * 60000).toISOString().slice(0, 19);
  return `${local}${offset < 0 ? "-" : "+"}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

const TIME_FIELDS = [
  {
    key: "timeMode",
    label: "Time sync",
    type: "select",
    aliases: ["mode"],
    options: [["NTP", "NTP"], ["manual", "Manual"]],
  },
  {
    key: "timeZone",
    label: "Time zone",
    aliases: ["time_zone"],
    hint: "POSIX form, hours west of UTC: CST-8:00:00 is UTC+8, EST5 is UTC−5",
  },
  {
    key: "localTime",
    label: "Device time",
    hint: "ISO 8601 with the UTC offset, e.g. 2026-11-21T14:05:00+01:00",
    show: (values) => values.timeMode === "manual",
    // The clock is set only when the field was changed: the time read at load is stale by now.
    write: (root, value) =>
      value === textAt(root, "localTime") ? removeAt(root, "localTime") : setText(root, "localTime", value),
  },
];

const HOST = { hostname: "hostName", ipaddress: "ipAddress" };
const NTP_FIELDS = [
  {
    key: "addressingFormatType",
    label: "Server address type",
    type: "select",
    aliases: ["addressing"],
    options: [["hostname", "Host name"], ["ipaddress", "IP address"]],
  },
  {
    key: "ntpHost",
    label: "NTP server",
    aliases: ["host", "hostName", "ipAddress"],
    match: /ntp_servers\[\d+\]: /, // the server's own check (an IP address that is not one)
    read: (root) => textAt(root, "hostName") || textAt(root, "ipAddress"),
    write: (root, value, values) => {
      removeAt(root, "hostName");
      removeAt(root, "ipAddress");
      setText(root, HOST[values.addressingFormatType] || "hostName", value);
    },
  },
  { key: "portNo", label: "NTP port", type: "number", aliases: ["port"], hint: "1 to 65535" },
  { key: "synchronizeInterval", label: "Interval (minutes)", type: "number", aliases: ["interval_min"],
    hint: "1 to 10080" },
];

export function TimePage() {
  const time = useIsapiForm("/ISAPI/System/time", TIME_FIELDS);
  // The device keeps up to 4 servers; the page edits the first, as Hikvision's page does.
  const ntp = useIsapiForm("/ISAPI/System/time/ntpServers/1", NTP_FIELDS);
  const manual = time.values.timeMode === "manual";
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Time</h2>
    <${IsapiForm} form=${time} label="Time">
      ${manual &&
      html`<p><button type="button" class="plain" onClick=${() => time.set("localTime", computerTime())}>
        Use this computer's time
      </button></p>`}
    <//>
    <h3>NTP server</h3>
    <${IsapiForm} form=${ntp} label="NTP server" />
  </section>`;
}
