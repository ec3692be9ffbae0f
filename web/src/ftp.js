// Configuration → Network → Advanced → FTP: the server the "upload to FTP" linkage sends event
// pictures to, FTP or FTPS, its login, and the folders the pictures go into; a test upload.
import { IsapiForm, TestButton, setText, textAt, useIsapiForm } from "./form.js";
import { addressField, passwordField, portField } from "./notify.js";
import { html } from "./ui.js";

const FTP = "/ISAPI/System/Network/ftp";
const PATH = "uploadPath";
const FIXED = "customize";
const DATED = "time_date";
// The folder layouts the device supports: [value, label, the rules of its levels].
const LAYOUTS = [
  ["root", "Root folder", []],
  ["fixed", "A fixed folder", [FIXED]],
  ["dated", "A folder a day (yyyy-mm-dd)", [DATED]],
  ["both", "A fixed folder, then a folder a day", [FIXED, DATED]],
];
const withFolder = (values) => values.layout === "fixed" || values.layout === "both";
const login = (values) => !values.anonymous;

const LAYOUT_FIELD = {
  key: "layout",
  label: "Directory structure",
  type: "select",
  aliases: ["pathDepth", "uploadPath"],
  options: LAYOUTS.map(([value, label]) => [value, label]),
  read: (root) => {
    const depth = Number(textAt(root, `${PATH}/pathDepth`)) || 0;
    const rules = [textAt(root, `${PATH}/topDirNameRule`), textAt(root, `${PATH}/subDirNameRule`)].slice(0, depth);
    return (LAYOUTS.find(([, , r]) => r.join() === rules.join()) || LAYOUTS[0])[0];
  },
  // The folder name is written after this, when the layout has one.
  write: (root, value) => {
    const rules = LAYOUTS.find(([v]) => v === value)[2];
    setText(root, `${PATH}/pathDepth`, rules.length);
    ["top", "sub"].forEach((level, i) => {
      setText(root, `${PATH}/${level}DirNameRule`, rules[i] || "none");
      setText(root, `${PATH}/${level}DirName`, "");
    });
  },
};

// Vigil takes `enabled` and `uploadPicture` as one switch (pictures are all it uploads).
const ENABLED_FIELD = {
  key: "enabled",
  label: "Upload event pictures",
  type: "checkbox",
  aliases: ["uploadPicture"],
  read: (root) => textAt(root, "enabled") === "true",
  write: (root, value) => {
    setText(root, "enabled", value);
    setText(root, "uploadPicture", value);
  },
};

const FTP_FIELDS = [
  ENABLED_FIELD,
  addressField("", "FTP server"),
  portField("portNo", "FTP port"),
  {
    key: "useSSL",
    label: "Protocol",
    type: "select",
    options: [["false", "FTP"], ["true", "FTPS (explicit TLS)"]],
  },
  { key: "verifyCertificate", label: "Verify the server's certificate", type: "checkbox", show: (v) => v.useSSL === "true" },
  { key: "anonymous", path: "annoyftp", label: "Anonymous login", type: "checkbox", aliases: ["annoyftp"] },
  { key: "user", path: "userName", label: "User name", show: login, autocomplete: "off", aliases: ["userName"] },
  passwordField("password", login),
  LAYOUT_FIELD,
  { key: "directory", path: `${PATH}/topDirName`, label: "Folder", show: withFolder, aliases: ["topDirName"], hint: "Under the login's home folder, such as alarms/lobby" },
];

export function FtpPage() {
  const form = useIsapiForm(`${FTP}/1`, FTP_FIELDS);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">FTP</h2>
    <p class="hint">The server the "Upload to FTP" linkage sends event pictures to (passive mode).
      The device names each picture <code>IP_channel_time_EVENT.jpg</code>. Test uploads a small
      text file into those folders, and deletes it, with the settings as shown, saved or not.</p>
    <${IsapiForm} form=${form} label="FTP">
      <${TestButton} form=${form} path=${`${FTP}/test`} done="Test file uploaded: the server accepted it." />
    <//>
  </section>`;
}
