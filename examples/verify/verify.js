// Verify a Herald webhook in Node.js (no dependencies).
// Capture the raw body (e.g. express.raw({ type: "application/json" })) before parsing it.
// Either signature proves the request; webhook-signature carries one entry per valid secret
// during a rotation, X-Herald-Signature the previous secret until the rotation is confirmed.
const crypto = require("crypto");

const TOLERANCE_SECONDS = 5 * 60;

function safeEqual(a, b) {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function verifyHerald(secret, headers, body) {
  const timestamp = headers["x-herald-timestamp"];
  const received = headers["x-herald-signature"];
  if (Math.abs(Date.now() - Date.parse(timestamp)) > TOLERANCE_SECONDS * 1000) return false;
  const expected = "sha256=" + crypto.createHmac("sha256", secret)
    .update(Buffer.concat([Buffer.from(timestamp + "."), body])).digest("hex");
  return safeEqual(expected, received);
}

function verifyStandard(secret, headers, body) {
  const id = headers["webhook-id"], timestamp = headers["webhook-timestamp"];
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = crypto.createHmac("sha256", key)
    .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body])).digest("base64");
  return headers["webhook-signature"].split(" ")
    .filter((entry) => entry.startsWith("v1,"))
    .some((entry) => safeEqual(expected, entry.slice(3)));
}

module.exports = { verifyHerald, verifyStandard };

if (require.main === module) {
  // Used by Herald's tests: {"secret", "headers", "body_base64"} on stdin.
  const request = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const body = Buffer.from(request.body_base64, "base64");
  const ok = verifyStandard(request.secret, headers, body) || verifyHerald(request.secret, headers, body);
  console.log(ok ? "valid" : "invalid");
  process.exit(ok ? 0 : 1);
}
