// Runs graphql-http's server audit (the GraphQL-over-HTTP spec's MUSTs, SHOULDs and MAYs)
// against the server at the given URL, prints every audit that did not pass, and fails
// unless every MUST and every SHOULD passed. A MAY the server leaves out is a notice.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: npm run audit -- http://127.0.0.1:8000/graphql');
  process.exit(2);
}
const results = await auditServer({ url });
const failed = results.filter((r) => r.status !== 'ok');
for (const r of failed) {
  console.log(`${r.status} ${r.id} ${r.name}: ${r.reason}`);
}
const required = failed.filter((r) => /^(MUST|SHOULD)\b/.test(r.name));
console.log(
  `${results.length} audits: ${results.length - failed.length} passed, ` +
    `${required.length} MUST/SHOULD failed, ${failed.length - required.length} MAY left out`,
);
process.exit(required.length ? 1 : 0);
