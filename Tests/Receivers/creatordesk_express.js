// CreatorDesk's Node.js (Express) verification snippet, from
// ../shared/reference/000_ceb4263153d1b093.txt, section "3. Verify HMAC Signature" (lines 403-427),
// as written there. Filled in: the secret ($WEBHOOK_SECRET, as the snippet reads it). Added around
// it: express (Debian's node-express; NODE_PATH=/usr/share/nodejs), the app, the request log
// ($RECEIVER_LOG, written when each answer is finished) and the port ($PORT).
const express = require("express");
const fs = require("fs");
const app = express();

app.use((req, res, next) => {
  res.on("finish", () => {
    if (!process.env.RECEIVER_LOG) return;
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) headers[name.toLowerCase()] = String(value);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    fs.appendFileSync(process.env.RECEIVER_LOG,
      JSON.stringify({ headers, body_base64: body.toString("base64"), status: res.statusCode }) + "\n");
  });
  next();
});

// --- from the reference document ---
const crypto = require("crypto");
const WEBHOOK_SECRET = process.env.WEBHOOK_SECRET;

// WICHTIG: raw body capturen, nicht JSON-parsen vor verify
app.post("/webhook",
  express.raw({ type: "application/json" }),
  (req, res) => {
    const ts = req.headers["x-creatordesk-timestamp"];
    const received = req.headers["x-creatordesk-signature"];
    const body = req.body;  // Buffer

    const message = Buffer.concat([Buffer.from(ts + "."), body]);
    const expected = "sha256=" + crypto
      .createHmac("sha256", WEBHOOK_SECRET)
      .update(message).digest("hex");

    if (!crypto.timingSafeEqual(
        Buffer.from(expected), Buffer.from(received))) {
      return res.status(401).send("invalid signature");
    }

    const payload = JSON.parse(body.toString());
    // ... verarbeiten
    res.send("ok");
});
// --- end ---

app.listen(Number(process.env.PORT), "127.0.0.1");
