// Fields the notification servers share (Network → Advanced: e-mail, FTP, alarm servers): the
// server's address in Hikvision's address elements, its port, and a password the device keeps
// secret (a GET never shows it; an empty one leaves the stored one).
import { removeAt, setText, textAt } from "./form.js";

const ADDRESS_TAGS = ["addressingFormatType", "hostName", "ipAddress", "ipv6Address", "ipV6Address"];
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The server's address under `base` ("" for the root): a host name or an IPv4/IPv6 address. */
export function addressField(base, label = "Server address") {
  const at = (tag) => (base ? `${base}/${tag}` : tag);
  return {
    key: "host",
    label,
    aliases: ["hostName", "ipAddress", "ipv6Address"],
    hint: "A host name or an IP address",
    read: (root) => {
      const shown = textAt(root, at("hostName")) || textAt(root, at("ipAddress")) || textAt(root, at("ipv6Address"));
      return shown === "0.0.0.0" ? "" : shown;
    },
    // The element the device expects for what was typed; something else goes as a host name,
    // which the device checks (and names in its refusal).
    write: (root, value) => {
      for (const tag of ADDRESS_TAGS) removeAt(root, at(tag));
      const text = value.trim();
      const kind = IPV4.test(text) || text.includes(":") ? "ipaddress" : "hostname";
      setText(root, at("addressingFormatType"), text ? kind : "ipaddress");
      const tag = kind === "hostname" ? "hostName" : text.includes(":") ? "ipv6Address" : "ipAddress";
      setText(root, at(text ? tag : "ipAddress"), text || "0.0.0.0");
    },
  };
}

export function portField(path, label = "Port") {
  return { key: "port", path, label, type: "number", aliases: ["portNo"], hint: "1 to 65535" };
}

/** The account's password: never read back; sent only when typed (the stored one stays). */
export function passwordField(path, show) {
  return {
    key: "password",
    path,
    label: "Password",
    type: "password",
    show,
    hint: "Stored on the device and never shown: leave empty to keep it",
    read: () => "",
    write: (root, value) => (value ? setText(root, path, value) : removeAt(root, path)),
  };
}
