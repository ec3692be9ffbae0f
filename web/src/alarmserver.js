// Configuration → Network → Advanced → Alarm server: the HTTP(S) alarm servers (up to four) the
// "notify the alarm center" linkage POSTs each alert to: listed, added, edited, deleted and
// tested.
import { useEffect, useState } from "preact/hooks";
import { field, isapi, xmlDocument } from "./api.js";
import { IsapiForm, TestButton, useIsapiForm } from "./form.js";
import { addressField, passwordField, portField } from "./notify.js";
import { TableHead, html } from "./ui.js";

const HOSTS = "/ISAPI/Event/notification/httpHosts";
const MAX_HOSTS = 4; // the device keeps ids 1 to 4
const AUTH_NAMES = { none: "None", MD5digest: "Digest", basic: "Basic" };
const withLogin = (values) => values.auth !== "none";

const HOST_FIELDS = [
  { key: "path", path: "url", label: "URL", aliases: ["url"], hint: "The path the alerts are posted to, such as /alarms" },
  { key: "protocol", path: "protocolType", label: "Protocol", type: "select", options: [["HTTP", "HTTP"], ["HTTPS", "HTTPS"]] },
  addressField("", "Server address"),
  portField("portNo"),
  { key: "verifyCertificate", label: "Verify the server's certificate", type: "checkbox", show: (v) => v.protocol === "HTTPS" },
  {
    key: "auth",
    path: "httpAuthenticationMethod",
    label: "Authentication",
    type: "select",
    options: Object.entries(AUTH_NAMES),
  },
  { key: "user", path: "userName", label: "User name", show: withLogin, autocomplete: "off", aliases: ["userName"] },
  passwordField("password", withLogin),
];

// A new host starts on HTTP port 80 with no login and no address (the device's defaults).
function newHost(id) {
  return xmlDocument("HttpHostNotification", {
    id,
    url: "/",
    protocolType: "HTTP",
    parameterFormatType: "XML",
    addressingFormatType: "ipaddress",
    ipAddress: "0.0.0.0",
    portNo: 80,
    userName: "",
    httpAuthenticationMethod: "none",
  });
}

/** The editor of host `id`; `adding` POSTs it as a new host (its id the first free one). */
function HostEditor({ id, adding, onDone }) {
  const form = useIsapiForm(adding ? null : `${HOSTS}/${id}`, HOST_FIELDS, {
    template: adding ? newHost(id) : undefined,
    method: adding ? "POST" : "PUT",
    put: adding ? HOSTS : undefined,
    onSaved: onDone,
  });
  const title = adding ? "Add an alarm server" : `Edit alarm server ${id}`;
  return html`<div class="editor">
    <h3>${title}</h3>
    <${IsapiForm} form=${form} label=${title}>
      <${TestButton} form=${form} path=${`${HOSTS}/${id}/test`} done="Test notification sent: the server accepted it." />
      <p><button type="button" class="plain" onClick=${() => onDone(false)}>Close</button></p>
    <//>
  </div>`;
}

function readHost(item) {
  const address = field(item, "hostName") || field(item, "ipAddress") || field(item, "ipv6Address");
  return {
    id: field(item, "id"),
    url: `${field(item, "protocolType").toLowerCase()}://${address}:${field(item, "portNo")}${field(item, "url")}`,
    auth: AUTH_NAMES[field(item, "httpAuthenticationMethod")] || field(item, "httpAuthenticationMethod"),
  };
}

// The authentication goes under the URL rather than in a column: the table fits 375 px.
function HostRow({ host, onEdit, onDelete }) {
  return html`<tr>
    <td>${host.id}</td>
    <td class="wrap">${host.url}<br /><span class="hint">Authentication: ${host.auth}</span></td>
    <td class="row-actions">
      <button type="button" class="plain" onClick=${() => onEdit(host.id)} aria-label=${`Edit alarm server ${host.id}`}>Edit</button>
      <button type="button" class="plain danger" onClick=${() => onDelete(host)}
        aria-label=${`Delete alarm server ${host.id}`}>Delete</button>
    </td>
  </tr>`;
}

export function AlarmServerPage() {
  const [hosts, setHosts] = useState([]);
  const [editing, setEditing] = useState(null); // { id, adding }
  const [error, setError] = useState("");
  const load = async () => setHosts([...(await isapi("GET", HOSTS)).children].map(readHost));
  const failed = (e) => setError(e.message);
  useEffect(() => {
    load().catch(failed);
  }, []);

  async function remove(host) {
    if (!window.confirm(`Delete alarm server ${host.id} (${host.url})?`)) return;
    setError("");
    setEditing(null);
    await isapi("DELETE", `${HOSTS}/${host.id}`).then(load).catch(failed);
  }
  function done(saved) {
    if (saved !== false) load().catch(failed);
    setEditing(null);
  }
  const taken = new Set(hosts.map((h) => Number(h.id)));
  const free = [1, 2, 3, 4].find((id) => !taken.has(id));

  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Alarm server</h2>
    <p class="hint">The "Notify the alarm center" linkage POSTs each alert (an
      EventNotificationAlert in XML) to these servers, up to ${MAX_HOSTS}. Test sends a heartbeat
      alert with the settings as shown, saved or not.</p>
    ${error && html`<p class="field-error" role="alert">${error}</p>`}
    ${hosts.length
      ? html`<div class="table-scroll"><table class="list">
          <${TableHead} columns=${["ID", "Server", "Actions"]} />
          <tbody>${hosts.map((host) => html`<${HostRow} host=${host} onEdit=${(id) => setEditing({ id })} onDelete=${remove} />`)}</tbody>
        </table></div>`
      : html`<p>No alarm server is set.</p>`}
    <p>
      <button type="button" disabled=${!free} onClick=${() => setEditing({ id: free, adding: true })}>Add alarm server</button>
    </p>
    ${editing && html`<${HostEditor} key=${`${editing.id}-${editing.adding}`} id=${editing.id} adding=${editing.adding} onDone=${done} />`}
  </section>`;
}
