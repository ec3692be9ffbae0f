// Configuration → System → Log: the device log searched by type and time (POST
// /ISAPI/ContentMgmt/logSearch, a page at a time) and exported as CSV (…/logSearch/dataPackage).
import { useState } from "preact/hooks";
import { isapi, isapiReply, xmlDocument } from "./api.js";
import { errorsOf, textAt } from "./form.js";
import { Field, TableHead, html, saveBlob } from "./ui.js";

const SEARCH = "/ISAPI/ContentMgmt/logSearch";
const PAGE_SIZE = 50;
const TYPES = [
  ["All", "All types"],
  ["Alarm", "Alarm"],
  ["Exception", "Exception"],
  ["Operation", "Operation"],
  ["Information", "Information"],
];
const FIELDS = [
  { key: "major", label: "Type", aliases: ["log type"] },
  { key: "minor", label: "Event (minor type)", aliases: ["metaId"] },
  { key: "from", label: "From", aliases: ["startTime"] },
  { key: "to", label: "To", aliases: ["endTime"] },
];

/** A datetime-local value (this computer's time) as the device's ISO 8601 in UTC. */
const utc = (local) => (local ? new Date(local).toISOString().replace(/\.\d{3}Z$/, "Z") : "");

function query(values, position) {
  const meta = ["log.std-cgi.com", values.major, values.minor.trim()].filter(Boolean).join("/");
  // An open end of the span is the whole log's.
  const start = utc(values.from) || "1970-01-01T00:00:00Z";
  const end = utc(values.to) || "2100-01-01T00:00:00Z";
  const span = `<startTime>${start}</startTime><endTime>${end}</endTime>`;
  const spanXml = `<timeSpanList><timeSpan>${span}</timeSpan></timeSpanList>`;
  // xmlDocument takes flat fields; the one nested element goes in after the metaId.
  return xmlDocument("CMSearchDescription", {
    searchID: `web-${Date.now()}`,
    metaId: meta,
    maxResults: PAGE_SIZE,
    searchResultPostion: position,
  }).replace("</metaId>", `</metaId>${spanXml}`);
}

function recordOf(item) {
  const read = (name) => textAt(item, `logDescriptor/${name}`);
  const [, major, minor] = read("metaId").split("/");
  const time = new Date(read("StartDateTime")).toLocaleString();
  return { time, major, minor, user: read("userName"), address: read("ipAddress"), info: read("info") };
}

function Results({ found }) {
  if (!found) return null;
  if (!found.records.length) return html`<p role="status">No records match.</p>`;
  return html`<p role="status">${found.total} records; ${found.records.length} shown.</p>
    <div class="table-scroll"><table class="list log">
      <${TableHead} columns=${["Time", "Type", "Event", "User", "Address", "Details"]} />
      <tbody>${found.records.map((r) => html`<tr><td>${r.time}</td><td>${r.major}</td><td>${r.minor}</td>
        <td>${r.user}</td><td>${r.address}</td><td>${r.info}</td></tr>`)}</tbody>
    </table></div>`;
}

export function LogPage() {
  const [values, setValues] = useState({ major: "All", minor: "", from: "", to: "" });
  const [found, setFound] = useState(null);
  const [errors, setErrors] = useState({});
  const set = (key) => (e) => setValues({ ...values, [key]: e.currentTarget.value });

  async function search(position) {
    setErrors({});
    try {
      const result = await isapi("POST", SEARCH, query(values, position));
      const records = [...result.getElementsByTagNameNS("*", "searchMatchItem")].map(recordOf);
      const total = Number(textAt(result, "totalMatches")) || records.length;
      const more = textAt(result, "responseStatusStrg") === "MORE";
      setFound({ records: position ? [...found.records, ...records] : records, total, more });
    } catch (error) {
      setErrors(errorsOf(error, FIELDS));
    }
  }
  async function exportCsv() {
    setErrors({});
    try {
      saveBlob(await (await isapiReply("POST", `${SEARCH}/dataPackage`, query(values, 0))).blob(), "device-log.csv");
    } catch (error) {
      setErrors(errorsOf(error, FIELDS));
    }
  }

  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Log</h2>
    <form class="log-search" onSubmit=${(e) => (e.preventDefault(), search(0))} novalidate aria-label="Log search">
      ${errors.form && html`<p class="field-error" role="alert">${errors.form}</p>`}
      <div class="field">
        <label for="major">Type</label>
        <select id="major" value=${values.major} onChange=${set("major")}>
          ${TYPES.map(([value, text]) => html`<option value=${value}>${text}</option>`)}
        </select>
      </div>
      <${Field} id="minor" label="Event (minor type)" value=${values.minor} error=${errors.minor} onInput=${set("minor")}
        hint=${html`<p id="minor-hint" class="hint">optional, e.g. remoteConfigWrite, remoteReboot</p>`} />
      <${Field} id="from" label="From" type="datetime-local" value=${values.from} error=${errors.from} onInput=${set("from")} />
      <${Field} id="to" label="To" type="datetime-local" value=${values.to} error=${errors.to} onInput=${set("to")} />
      <div class="actions">
        <button type="submit">Search</button>
        <button type="button" class="plain" onClick=${exportCsv}>Export CSV</button>
      </div>
    </form>
    <${Results} found=${found} />
    ${found?.more && html`<p><button type="button" class="plain" onClick=${() => search(found.records.length)}>More</button></p>`}
  </section>`;
}
