// Configuration → System → Users: the list, adding a user, changing a user's level, rights and
// password (with the password rule shown as it is typed), and deleting one. Setting a password
// takes the administrator's own password again (<loginPassword>), as the device asks.
import { useEffect, useState } from "preact/hooks";
import { field, isapi, xmlDocument } from "./api.js";
import { IsapiForm, removeAt, setText, useIsapiForm } from "./form.js";
import { passwordRules } from "./password.js";
import { RuleList, TableHead, html } from "./ui.js";

const LIST = "/ISAPI/Security/users";
const RIGHTS = {
  preview: "Live view",
  playBack: "Playback",
  record: "Manual recording",
  ptzControl: "PTZ control",
  voiceTalk: "Two-way audio",
  alarmOut: "Alarm output",
  logOrStateCheck: "Log and status",
  parameterConfig: "Configuration",
  upgrade: "Upgrade",
  restartOrShutdown: "Reboot",
};
// A level's rights as the device gives them by default (vigil.config.model.LEVEL_PERMISSIONS); a
// new user starts as a Viewer with them, and choosing a level sets its rights, as on Hikvision's page.
const LEVEL_RIGHTS = {
  Operator: ["preview", "playBack", "record", "ptzControl", "voiceTalk", "logOrStateCheck"],
  Viewer: ["preview", "playBack", "logOrStateCheck"],
};
const rightsOf = (level) => Object.fromEntries(Object.keys(RIGHTS).map((r) => [r, LEVEL_RIGHTS[level].includes(r)]));
const VIEWER_RIGHTS = LEVEL_RIGHTS.Viewer.map((r) => `<${r}>true</${r}>`).join("");
const NEW_USER = xmlDocument("User", { userName: "", userLevel: "Viewer" }).replace(
  "</User>",
  `<remotePermission>${VIEWER_RIGHTS}</remotePermission></User>`,
);

const notAdmin = (values) => values.userLevel !== "Administrator";
const writeIfGiven = (name) => (root, value) => (value ? setText(root, name, value) : removeAt(root, name));

function userFields(adding) {
  return [
    { key: "userName", label: "User name", readOnly: !adding, autocomplete: "off" },
    {
      key: "userLevel",
      label: "Level",
      type: "select",
      aliases: ["level"],
      options: [["Operator", "Operator"], ["Viewer", "Viewer"]],
      show: notAdmin,
      alsoSets: rightsOf,
    },
    ...Object.entries(RIGHTS).map(([key, label]) => ({
      key,
      label,
      type: "checkbox",
      path: `remotePermission/${key}`,
      show: notAdmin,
    })),
    {
      key: "password",
      label: adding ? "Password" : "New password (empty: unchanged)",
      type: "password",
      hintNode: (values) =>
        html`<${RuleList} id="password-hint" rules=${passwordRules(values.userName, values.password || "")} />`,
      write: writeIfGiven("password"),
    },
    { key: "confirm", label: "Confirm password", type: "password", write: () => {} },
    {
      key: "loginPassword",
      label: "Your own password",
      type: "password",
      autocomplete: "current-password",
      hint: "needed to set a password",
      write: writeIfGiven("loginPassword"),
    },
  ];
}

/** The page's own checks before the device's: the rule and the confirmation. */
function checkPassword(values) {
  if (!values.password) return null;
  if (!passwordRules(values.userName, values.password).every((rule) => rule.ok)) {
    return { password: "The password does not meet the rule below." };
  }
  return values.confirm === values.password ? null : { confirm: "The two passwords differ." };
}

function UserEditor({ id, onDone }) {
  const adding = id === "new";
  const form = useIsapiForm(adding ? null : `${LIST}/${id}`, userFields(adding), {
    template: adding ? NEW_USER : undefined,
    method: adding ? "POST" : "PUT",
    put: adding ? LIST : undefined,
    check: checkPassword,
    // The admin's level and rights are fixed: sending them back, even unchanged, is refused.
    prepare: (root, values) => {
      if (!notAdmin(values)) ["userLevel", "remotePermission"].forEach((name) => removeAt(root, name));
    },
    onSaved: onDone,
  });
  const title = adding ? "Add a user" : `Edit ${form.values.userName || "user"}`;
  return html`<div class="editor">
    <h3>${title}</h3>
    <${IsapiForm} form=${form} label=${title}>
      <p><button type="button" class="plain" onClick=${() => onDone(false)}>Close</button></p>
    <//>
  </div>`;
}

function UserRow({ user, onEdit, onDelete }) {
  return html`<tr>
    <td>${user.name}</td>
    <td>${user.level}</td>
    <td class="row-actions">
      <button type="button" class="plain" onClick=${() => onEdit(user.id)}
        aria-label=${`Edit ${user.name}`}>Edit</button>
      ${user.level !== "Administrator" &&
      html`<button type="button" class="plain danger" onClick=${() => onDelete(user)}
        aria-label=${`Delete ${user.name}`}>Delete</button>`}
    </td>
  </tr>`;
}

export function UsersPage() {
  const [users, setUsers] = useState([]);
  const [editing, setEditing] = useState(null);
  const [error, setError] = useState("");

  async function load() {
    const list = await isapi("GET", LIST);
    const read = (user) => ({ id: field(user, "id"), name: field(user, "userName"), level: field(user, "userLevel") });
    setUsers([...list.children].map(read));
  }
  const failed = (e) => setError(e.message);
  useEffect(() => {
    load().catch(failed);
  }, []);

  async function remove(user) {
    if (!window.confirm(`Delete the user ${user.name}?`)) return;
    setError("");
    await isapi("DELETE", `${LIST}/${user.id}`).then(load).catch(failed);
  }
  function done(saved) {
    if (saved !== false) load().catch(failed);
    setEditing(null);
  }

  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Users</h2>
    ${error && html`<p class="field-error" role="alert">${error}</p>`}
    <table class="list">
      <${TableHead} columns=${["User name", "Level", "Actions"]} />
      <tbody>${users.map((user) => html`<${UserRow} user=${user} onEdit=${setEditing} onDelete=${remove} />`)}</tbody>
    </table>
    <p><button type="button" onClick=${() => setEditing("new")}>Add user</button></p>
    ${editing && html`<${UserEditor} key=${editing} id=${editing} onDone=${done} />`}
  </section>`;
}
