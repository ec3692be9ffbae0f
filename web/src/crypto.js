// The page's cryptography, so that no password crosses plain HTTP:
// - login: the HTTP Digest response (RFC 7616, qop=auth) computed here, as a browser's own digest
//   would, for the device's /ISAPI/Security/sessionLogin challenge;
// - activation: the first password sealed to the device's public key (RSA-OAEP, SHA-256), as SADP
//   clients do. WebCrypto is not offered to pages on plain HTTP, so both use audited pure-JS code.
import { md5 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, randomBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { OAEP, mgf1 } from "micro-rsa-dsa-dh/rsa.js";

const HASHES = { "SHA-256": sha256, MD5: md5 };

function hashHex(algorithm, text) {
  return bytesToHex(HASHES[algorithm](utf8ToBytes(text)));
}

/** The `Authorization: Digest ...` header value for one request. */
export function digestAuthorization({ algorithm, realm, nonce, opaque }, user, password, method, uri) {
  const cnonce = bytesToHex(randomBytes(16));
  const nc = "00000001";
  const ha1 = hashHex(algorithm, `${user}:${realm}:${password}`);
  const ha2 = hashHex(algorithm, `${method}:${uri}`);
  const response = hashHex(algorithm, `${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
  const quoted = (value) => `"${value.replace(/["\\]/g, "\\$&")}"`;
  const fields = [
    `username=${quoted(user)}`, `realm=${quoted(realm)}`, `nonce=${quoted(nonce)}`,
    `uri=${quoted(uri)}`, `algorithm=${algorithm}`, `response=${quoted(response)}`,
    `qop=auth`, `nc=${nc}`, `cnonce=${quoted(cnonce)}`,
  ];
  if (opaque) fields.push(`opaque=${quoted(opaque)}`);
  return `Digest ${fields.join(", ")}`;
}

// -- a DER SubjectPublicKeyInfo -> {n, e} ---------------------------------------------------------
function readTlv(bytes, pos) {
  const tag = bytes[pos];
  let length = bytes[pos + 1];
  let start = pos + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i];
    start += count;
  }
  if (start + length > bytes.length) throw new Error("the device's public key is damaged");
  return { tag, start, end: start + length };
}

function toBigInt(bytes) {
  return bytes.length ? BigInt(`0x${bytesToHex(bytes)}`) : 0n;
}

export function parsePublicKey(base64) {
  const der = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const spki = readTlv(der, 0);
  const algorithm = readTlv(der, spki.start);
  const bits = readTlv(der, algorithm.end);
  if (bits.tag !== 0x03) throw new Error("the device's public key is not RSA");
  const rsa = readTlv(der, bits.start + 1); // skip the unused-bits byte
  const n = readTlv(der, rsa.start);
  const e = readTlv(der, n.end);
  return { n: toBigInt(der.subarray(n.start, n.end)), e: toBigInt(der.subarray(e.start, e.end)) };
}

/** `challenge + "\n" + secret` sealed to the device key, base64 (what <sealedPassword> holds). */
export function sealSecret(publicKeyB64, challenge, secret) {
  const oaep = OAEP(sha256, mgf1(sha256));
  const sealed = oaep.encrypt(parsePublicKey(publicKeyB64), utf8ToBytes(`${challenge}\n${secret}`));
  return btoa(String.fromCharCode(...sealed));
}
