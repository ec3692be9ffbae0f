// Configuration → Network → Advanced → Email: the SMTP server the "send e-mail" linkage uses, its
// security and login, the sender, up to three receivers and the pictures attached; a test mail.
import { IsapiForm, TestButton, elementAt, setText, textAt, useIsapiForm } from "./form.js";
import { addressField, passwordField, portField } from "./notify.js";
import { html } from "./ui.js";

const MAILING = "/ISAPI/System/Network/mailing";
const SMTP = "sender/smtp";
const RECEIVERS = 3; // the device takes at most three; it shows three slots
const authOn = (values) => values.auth;

// The device reads enableSSL as implicit TLS and enableTLS as STARTTLS; both are always sent.
const SECURITY_FIELD = {
  key: "security",
  label: "Encryption",
  type: "select",
  aliases: ["enableSSL", "enableTLS"],
  options: [["none", "None"], ["STARTTLS", "STARTTLS"], ["SSL", "SSL/TLS"]],
  read: (root) =>
    textAt(root, `${SMTP}/enableTLS`) === "true" ? "STARTTLS" : textAt(root, `${SMTP}/enableSSL`) === "true" ? "SSL" : "none",
  write: (root, value) => {
    setText(root, `${SMTP}/enableSSL`, value === "SSL");
    setText(root, `${SMTP}/enableTLS`, value === "STARTTLS");
  },
};

/** The `index`th receiver slot's `tag` (name, emailAddress). */
function receiverField(index, tag, label) {
  const slot = (root) => [...(elementAt(root, "receiverList")?.children || [])][index];
  return {
    key: `receiver${index + 1}${tag === "name" ? "Name" : "Address"}`,
    label: `Receiver ${index + 1} ${label}`,
    type: tag === "name" ? "text" : "email",
    match: new RegExp(`<receiver(List)?>`),
    read: (root) => textAt(slot(root), tag),
    write: (root, value) => {
      let receiver = slot(root);
      if (!receiver) {
        receiver = elementAt(root, "receiverList", true).appendChild(root.ownerDocument.createElementNS(root.namespaceURI, "receiver"));
        setText(receiver, "id", index + 1);
      }
      setText(receiver, tag, value.trim());
    },
  };
}

const RECEIVER_FIELDS = Array.from({ length: RECEIVERS }, (_, i) => [
  receiverField(i, "name", "name"),
  receiverField(i, "emailAddress", "address"),
]).flat();

const MAIL_FIELDS = [
  { key: "senderName", path: "sender/name", label: "Sender name", aliases: ["sender_name"] },
  { key: "senderAddress", path: "sender/emailAddress", label: "Sender address", type: "email", aliases: ["sender_address"] },
  addressField(SMTP, "SMTP server"),
  portField(`${SMTP}/portNo`, "SMTP port"),
  SECURITY_FIELD,
  {
    key: "verifyCertificate",
    path: `${SMTP}/verifyCertificate`,
    label: "Verify the server's certificate",
    type: "checkbox",
    show: (values) => values.security !== "none",
  },
  { key: "auth", path: `${SMTP}/enableAuthorization`, label: "Authentication", type: "checkbox" },
  { key: "user", path: `${SMTP}/accountName`, label: "User name", show: authOn, autocomplete: "off", aliases: ["accountName"] },
  passwordField(`${SMTP}/password`, authOn),
  ...RECEIVER_FIELDS,
  { key: "attach", path: "attachment/snapshot/enabled", label: "Attach pictures", type: "checkbox" },
  {
    key: "interval",
    path: "attachment/snapshot/interval",
    label: "Interval between the pictures (s)",
    aliases: ["picture_interval_s"],
    type: "number",
    show: (values) => values.attach,
  },
];

export function MailPage() {
  const form = useIsapiForm(`${MAILING}/1`, MAIL_FIELDS);
  return html`<section aria-labelledby="page-title">
    <h2 id="page-title">Email</h2>
    <p class="hint">The server the "Send email" linkage uses. An alarm's mail carries three
      pictures of its channel. Test sends a test mail with the settings as shown, saved or not.</p>
    <${IsapiForm} form=${form} label="Email">
      <${TestButton} form=${form} path=${`${MAILING}/test`} done="Test mail sent: the server accepted it." />
    <//>
  </section>`;
}
