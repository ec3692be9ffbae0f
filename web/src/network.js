// Configuration → Network: the wired interface (DHCP or static address, DNS, MTU), the ports the
// device listens on and the web authentication, how the device is found (SADP, mDNS), and its
// HTTPS certificate.
import { useEffect, useState } from "preact/hooks";
import { isapi } from "./api.js";
import { IsapiForm, errorsOf, setText, textAt, useIsapiForm } from "./form.js";
import { Field, html } from "./ui.js";

const IP = "IPAddress";
const dhcp = (values) => values.addressingType === "dynamic";
const INTERFACE_FIELDS = [
  {
    key: "addressingType",
    path: `${IP}/addressingType`,
    label: "Addressing",
    type: "select",
    aliases: ["dhcp"],
    options: [["dynamic", "DHCP"], ["static", "Static"]],
  },
  // Under DHCP the fields show the lease and are not sent back as settings of the page's own.
  { key: "ipAddress", path: `${IP}/ipAddress`, label: "IPv4 address", aliases: ["ipv4_address"], readOnly: dhcp },
  { key: "subnetMask", path: `${IP}/subnetMask`, label: "Subnet mask", aliases: ["ipv4_mask"], readOnly: dhcp },
  { key: "gateway", path: `${IP}/DefaultGateway/ipAddress`, label: "Default gateway", aliases: ["ipv4_gateway"], readOnly: dhcp },
  { key: "dns1", path: `${IP}/PrimaryDNS/ipAddress`, label: "Preferred DNS server", readOnly: dhcp },
  { key: "dns2", path: `${IP}/SecondaryDNS/ipAddress`, label: "Alternate DNS server", readOnly: dhcp },
  { key: "MTU", path: "Link/MTU", label: "MTU", type: "number", aliases: ["mtu"], hint: "576 to 9000 bytes" },
];
const INTERFACE_FACTS = { interfaceName: "Interface", "Link/MACAddress": "MAC address", linkStatus: "Link" };

export function InterfacePage() {
  // The board's first interface: the sim and the camera boards have one.
  const form = useIsapiForm("/ISAPI/System/Network/interfaces/1", INTERFACE_FIELDS);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Network interface</h2>
    <${IsapiForm} form=${form} label="Interface">
      <dl class="facts">
        ${Object.entries(INTERFACE_FACTS).map(
          ([path, label]) => html`<dt>${label}</dt><dd>${textAt(form.root, path)}</dd>`,
        )}
      </dl>
    <//>
  </section>`;
}

/** The AdminAccessProtocol entry of `protocol` (HTTP, HTTPS, RTSP). */
function entryOf(root, protocol) {
  return [...root.children].find((entry) => textAt(entry, "protocol") === protocol);
}

function portField(protocol, label) {
  return {
    key: `${protocol.toLowerCase()}Port`,
    label,
    type: "number",
    aliases: [protocol.toLowerCase()],
    hint: "1 to 65535",
    read: (root) => textAt(entryOf(root, protocol), "portNo"),
    write: (root, value) => setText(entryOf(root, protocol), "portNo", value),
  };
}

const PORT_FIELDS = [
  portField("HTTP", "HTTP port"),
  portField("RTSP", "RTSP port"),
  {
    key: "httpsEnabled",
    label: "HTTPS",
    type: "checkbox",
    aliases: ["https_enabled"],
    read: (root) => textAt(entryOf(root, "HTTPS"), "enabled") === "true",
    write: (root, value) => setText(entryOf(root, "HTTPS"), "enabled", value ? "true" : "false"),
  },
  portField("HTTPS", "HTTPS port"),
];

const AUTH_FIELDS = [
  {
    key: "CertificateType",
    label: "Web authentication",
    type: "select",
    options: [["digest", "Digest"], ["digest/basic", "Digest or Basic"]],
  },
  {
    key: "algorithmType",
    path: "SecurityAlgorithm/algorithmType",
    label: "Digest algorithm",
    type: "select",
    options: [["MD5/SHA256", "SHA-256 or MD5"], ["SHA256", "SHA-256"], ["MD5", "MD5"]],
  },
];

export function PortsPage() {
  const ports = useIsapiForm("/ISAPI/Security/adminAccesses", PORT_FIELDS);
  const auth = useIsapiForm("/ISAPI/Security/webCertificate", AUTH_FIELDS);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Ports</h2>
    <p class="hint">A new port takes effect at once: after moving the HTTP or HTTPS port, open the
      page again at the new address.</p>
    <${IsapiForm} form=${ports} label="Ports" />
    <h3>Authentication</h3>
    <${IsapiForm} form=${auth} label="Authentication" />
  </section>`;
}

// -- discovery --------------------------------------------------------------------------------
const DISCOVERY_FIELDS = [
  { key: "sadpEnabled", path: "SADP/enabled", label: "SADP discovery", type: "checkbox", aliases: ["sadp_enabled"] },
  {
    key: "multicastEnabled",
    path: "SADP/multicastEnabled",
    label: "Multicast discovery",
    type: "checkbox",
    aliases: ["multicast_enabled"],
  },
  { key: "sadpPort", path: "SADP/portNo", label: "SADP port (UDP)", type: "number", aliases: ["sadp_port"], hint: "1 to 65535" },
  { key: "mdnsEnabled", path: "Zeroconf/enabled", label: "mDNS (Bonjour)", type: "checkbox", aliases: ["mdns_enabled"] },
];

export function DiscoveryPage() {
  const form = useIsapiForm("/ISAPI/System/Network/interfaces/1/discovery", DISCOVERY_FIELDS);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Discovery</h2>
    <p class="hint">SADP lets the vendor tools and <code>vigil discover</code> find, activate and
      address the device; mDNS announces its web page and streams to browsers and NVRs. Switched
      off, the device is found only by its address.</p>
    <${IsapiForm} form=${form} label="Discovery" />
  </section>`;
}

// -- HTTPS certificate ------------------------------------------------------------------------
const CERTIFICATE = "/ISAPI/Security/serverCertificate/certificate";
const CERTIFICATE_FACTS = [
  ["subjectDN", "Subject"],
  ["issuerDN", "Issuer"],
  ["startDate", "Valid from"],
  ["endDate", "Valid until"],
  ["keyType", "Key"],
  ["fingerprintSHA256", "SHA-256 fingerprint"],
];
// The device names the key in its refusals ("the private key ..."); anything else is the file's.
const UPLOAD_FIELDS = [
  { key: "keyFile", label: "Private key", match: /private key/i },
  { key: "certFile", label: "Certificate", match: /./ },
];

function CertificateFacts({ info }) {
  if (!info) return html`<p>Loading…</p>`;
  const names = [...info.getElementsByTagNameNS("*", "subjectAltName")].map((e) => e.textContent);
  return html`<dl class="facts" aria-label="Certificate in use">
    ${CERTIFICATE_FACTS.map(([path, label]) => html`<dt>${label}</dt><dd>${textAt(info, path)}</dd>`)}
    <dt>Names</dt><dd>${names.join(", ")}</dd>
    <dt>Self-signed</dt><dd>${textAt(info, "selfSigned") === "true" ? "yes" : "no"}</dd>
  </dl>`;
}

/** PUT the certificate file and, when it is a file of its own, the key file after it. */
async function install(cert, key) {
  const parts = key ? [cert, "\n", key] : [cert];
  await isapi("PUT", CERTIFICATE, new Blob(parts), { "Content-Type": "application/x-pem-file" });
}

export function CertificatePage() {
  const [info, setInfo] = useState(null);
  const [files, setFiles] = useState({});
  const [errors, setErrors] = useState({});
  const [done, setDone] = useState("");
  const reload = () => isapi("GET", CERTIFICATE).then(setInfo, (error) => setErrors(errorsOf(error, UPLOAD_FIELDS)));
  useEffect(() => void reload(), []);

  async function attempt(work, message) {
    setErrors({});
    setDone("");
    try {
      await work();
      await reload();
      setDone(message);
    } catch (error) {
      setErrors(errorsOf(error, UPLOAD_FIELDS));
    }
  }
  const upload = (event) => {
    event.preventDefault();
    if (!files.certFile) return setErrors({ certFile: "Choose the certificate file first." });
    attempt(() => install(files.certFile, files.keyFile), "Installed: new HTTPS connections get this certificate.");
  };
  const selfSign = () => {
    if (!window.confirm("Replace the certificate in use by a new self-signed one?")) return;
    attempt(() => isapi("POST", "/ISAPI/Security/serverCertificate/selfSignCert"), "A new self-signed certificate is in use.");
  };
  const choose = (key) => (event) => setFiles((old) => ({ ...old, [key]: event.currentTarget.files[0] || null }));

  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">HTTPS certificate</h2>
    <${CertificateFacts} info=${info} />
    <form onSubmit=${upload} novalidate aria-label="Install a certificate">
      <h3>Install a certificate</h3>
      <p class="hint">PEM files: the certificate (with its chain after it) and its private key,
        without a passphrase. One file holding both is fine: leave the key empty.</p>
      <${Field} id="certFile" label="Certificate" type="file" accept=".pem,.crt,.cer" error=${errors.certFile}
        onChange=${choose("certFile")} />
      <${Field} id="keyFile" label="Private key" type="file" accept=".pem,.key" error=${errors.keyFile}
        onChange=${choose("keyFile")} />
      ${errors.form && html`<p class="field-error" role="alert">${errors.form}</p>`}
      <p role="status" class="saved">${done}</p>
      <div class="actions">
        <button type="submit">Install</button>
        <button type="button" class="plain" onClick=${selfSign}>Create self-signed</button>
      </div>
    </form>
  </section>`;
}
