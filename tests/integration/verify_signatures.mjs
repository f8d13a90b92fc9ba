// Verifies webhook signatures with the reference implementation, the `standardwebhooks` npm
// package (installed by tools/test.sh into build/npm). Input: NDJSON lines of
// {secret, raw, id, timestamp, signature, body}, written by delivery_test. Exit 0 when every
// line verifies.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const { Webhook } = require("standardwebhooks");

const lines = readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean);
let verified = 0;
for (const line of lines) {
  const r = JSON.parse(line);
  const wh = r.raw ? new Webhook(r.secret, { format: "raw" }) : new Webhook(r.secret);
  try {
    wh.verify(r.body, {
      "webhook-id": r.id,
      "webhook-timestamp": r.timestamp,
      "webhook-signature": r.signature,
    });
    verified++;
  } catch (e) {
    console.error(`not verified: id ${r.id}: ${e.message}`);
  }
}
console.log(`verified ${verified} of ${lines.length}`);
process.exit(verified === lines.length && lines.length > 0 ? 0 : 1);
