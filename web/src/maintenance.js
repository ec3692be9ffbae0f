// Configuration → System → Maintenance: firmware upgrade with its progress, reboot, restore
// (basic) and default (full), and the configuration file's export and import.
import { useState } from "preact/hooks";
import { isapi, isapiReply } from "./api.js";
import { errorsOf, textAt } from "./form.js";
import { Field, Progress, html, saveBlob, sleep } from "./ui.js";

const STATUS = "/ISAPI/System/upgradeStatus";
const FILE_TYPE = { "Content-Type": "application/octet-stream" };

/** A panel's result: what the device refused, by field, and what it did. */
function useOutcome() {
  const [errors, setErrors] = useState({});
  const [done, setDone] = useState("");
  return { errors, done, setDone, setErrors, clear: () => (setErrors({}), setDone("")) };
}

function Outcome({ outcome }) {
  return html`${outcome.errors.form && html`<p class="field-error" role="alert">${outcome.errors.form}</p>`}
    <p role="status" class="saved">${outcome.done}</p>`;
}

const fileOf = (event) => event.currentTarget.files[0] || null;

// -- upgrade --------------------------------------------------------------------------------
const UPGRADE_FIELDS = [{ key: "firmware", label: "Firmware file", match: /firmware|bundle|upgrade|slot/i }];

/** Poll upgradeStatus while `busy()`; report the highest percent the device gave. */
async function followUpgrade(busy, onPercent) {
  let best = 0;
  while (busy()) {
    try {
      best = Math.max(best, Number(textAt(await isapi("GET", STATUS), "percent")));
      onPercent(best);
    } catch {
      // A failed poll is not the upgrade's failure: the PUT's answer says how it went.
    }
    await sleep(300);
  }
  return best;
}

function Upgrade() {
  const [file, setFile] = useState(null);
  const [percent, setPercent] = useState(null);
  const outcome = useOutcome();

  async function upgrade(event) {
    event.preventDefault();
    outcome.clear();
    if (!file) return outcome.setErrors({ firmware: "Choose the firmware file first." });
    if (!window.confirm(`Upgrade the device with ${file.name}? It restarts when the upgrade is installed.`)) return;
    let uploading = true;
    setPercent(0);
    const following = followUpgrade(() => uploading, setPercent);
    try {
      await isapi("PUT", "/ISAPI/System/updateFirmware", file, FILE_TYPE);
      uploading = false;
      await following;
      // Installed: the device says 100 % until its restart, which it makes shortly.
      setPercent(Number(textAt(await isapi("GET", STATUS), "percent")));
      outcome.setDone("The firmware is installed: the device is restarting into it. Log in again in a minute.");
    } catch (error) {
      outcome.setErrors(errorsOf(error, UPGRADE_FIELDS));
    } finally {
      uploading = false;
    }
  }

  return html`<form onSubmit=${upgrade} novalidate aria-label="Upgrade">
    <h3>Upgrade</h3>
    <${Field} id="firmware" label="Firmware file" type="file" accept=".raucb" error=${outcome.errors.firmware}
      onChange=${(e) => setFile(fileOf(e))} />
    ${percent !== null && html`<${Progress} id="upgrade-progress" label="Upgrade progress" percent=${percent} />`}
    <${Outcome} outcome=${outcome} />
    <div class="actions"><button type="submit">Upgrade</button></div>
  </form>`;
}

// -- reboot and reset ----------------------------------------------------------------------
const ACTIONS = [
  {
    label: "Reboot",
    path: "/ISAPI/System/reboot",
    ask: "Reboot the device now?",
    done: "The device is rebooting: log in again when it is back.",
  },
  {
    label: "Restore",
    path: "/ISAPI/System/factoryReset?mode=basic",
    ask: "Restore the default settings, keeping the users, the network and the ports?",
    done: "The settings are restored; the device is rebooting.",
    words: "Every setting but the users, the network and the ports goes back to its default.",
  },
  {
    label: "Default",
    path: "/ISAPI/System/factoryReset?mode=full",
    ask: "Reset the device to its factory state? Every setting and user is erased and it must be activated again.",
    done: "The device is back in its factory state and rebooting: activate it again.",
    words: "Everything goes back to the factory state, users and network too.",
  },
];

function DeviceActions() {
  const outcome = useOutcome();
  async function run(action) {
    if (!window.confirm(action.ask)) return;
    outcome.clear();
    try {
      await isapi("PUT", action.path);
      outcome.setDone(action.done);
    } catch (error) {
      outcome.setErrors({ form: error.message });
    }
  }
  return html`<div class="panel">
    <h3>Reboot and reset</h3>
    <ul class="device-actions">
      ${ACTIONS.map(
        (action) => html`<li><button type="button" class="plain danger" onClick=${() => run(action)}>${action.label}</button>
          ${action.words && html`<span class="hint">${action.words}</span>`}</li>`,
      )}
    </ul>
    <${Outcome} outcome=${outcome} />
  </div>`;
}

// -- configuration file -------------------------------------------------------------------
const CONFIG = "/ISAPI/System/configurationData";
const CONFIG_FIELDS = [
  { key: "secretkey", label: "File passphrase", aliases: ["passphrase"] },
  { key: "configFile", label: "Configuration file", match: /file|board/ },
];
const withKey = (passphrase) => `${CONFIG}?secretkey=${encodeURIComponent(passphrase)}`;

function fileName(reply) {
  const named = /filename="([^"]+)"/.exec(reply.headers.get("Content-Disposition") || "");
  return named ? named[1] : "configuration.vcfg";
}

const PASSPHRASE_HINT = html`<p id="secretkey-hint" class="hint">
  8 to 128 characters; the file is encrypted with it and needs it to be imported
</p>`;

function ConfigurationFile() {
  const [passphrase, setPassphrase] = useState("");
  const [file, setFile] = useState(null);
  const outcome = useOutcome();

  async function attempt(work) {
    outcome.clear();
    try {
      outcome.setDone(await work());
    } catch (error) {
      outcome.setErrors(errorsOf(error, CONFIG_FIELDS));
    }
  }
  const exportFile = () =>
    attempt(async () => {
      const reply = await isapiReply("GET", withKey(passphrase));
      saveBlob(await reply.blob(), fileName(reply));
      return "Exported.";
    });
  const importFile = () =>
    attempt(async () => {
      if (!file) throw new Error("Choose the configuration file first.");
      await isapi("PUT", withKey(passphrase), file, FILE_TYPE);
      return "Imported: the device uses the file's settings.";
    });

  return html`<form onSubmit=${(e) => e.preventDefault()} novalidate aria-label="Configuration file">
    <h3>Configuration file</h3>
    <${Field} id="secretkey" label="File passphrase" type="password" autocomplete="off" value=${passphrase}
      error=${outcome.errors.secretkey} hint=${PASSPHRASE_HINT}
      onInput=${(e) => setPassphrase(e.currentTarget.value)} />
    <div class="actions"><button type="button" onClick=${exportFile}>Export</button></div>
    <${Field} id="configFile" label="Configuration file" type="file" accept=".vcfg" error=${outcome.errors.configFile}
      onChange=${(e) => setFile(fileOf(e))} />
    <div class="actions"><button type="button" onClick=${importFile}>Import</button></div>
    <${Outcome} outcome=${outcome} />
  </form>`;
}

export function MaintenancePage() {
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Maintenance</h2>
    <${Upgrade} />
    <${DeviceActions} />
    <${ConfigurationFile} />
  </section>`;
}
