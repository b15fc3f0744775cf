// The Digital Credentials Consortium's verifier (@digitalcredentials/verifier-core, the engine of
// Learner Credential Wallet and VerifierPlus) on one badge, run by tests/interop/test_dcc.py.
// Prints one JSON object: what verifyCredential answered (its log of checks, its errors, the
// schema check's results) and every URL it asked for.
//
//   node dcc.mjs FILE --api URL
//
// verifier-core fetches what it does not bundle with the global fetch: the issuer's documents
// (key, profile, status list) and the credentialSchema. The network here reaches nothing but
// the API under test, so fetch is wrapped before verifier-core loads: standard documents
// (the JSON-LD contexts verifier-core lacks, 1EdTech's schema) are answered from the project's
// bundled copies, each checked against the sha256 in its SOURCES.md, URLs of the API pass
// through to it, and anything else is refused.
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {parseArgs} from 'node:util';
import {bundledContexts} from './loader.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const {values, positionals} = parseArgs({allowPositionals: true, options: {api: {type: 'string'}}});
const [file] = positionals;
const api = new URL(values.api);

/** 1EdTech's AchievementCredential schema, under the URL credentials name it by. */
function bundledSchema() {
  const folder = join(here, '..', '..', 'badges', 'schema');
  const table = readFileSync(join(folder, 'SOURCES.md'), 'utf8');
  const row = table.split('\n').find(line => line.includes('ob_v3p0_achievementcredential_schema.json'));
  const cells = [...row.matchAll(/`([^`]+)`/g)].map(match => match[1]);
  const sha256 = cells[cells.length - 1];
  const bytes = readFileSync(join(folder, 'ob_v3p0_achievementcredential_schema.json'));
  const actual = createHash('sha256').update(bytes).digest('hex');
  if(actual !== sha256) {
    throw new Error(`bundled schema has sha256 ${actual}, SOURCES.md says ${sha256}`);
  }
  const named = cells.find(cell => cell.endsWith('/ob_v3p0_achievementcredential_schema.json'));
  return new Map([[named, bytes.toString('utf8')]]);
}

const standard = new Map([
  ...[...bundledContexts()].map(([url, context]) => [url, JSON.stringify(context)]),
  ...bundledSchema()
]);
const fetched = [];
const networkFetch = globalThis.fetch;
globalThis.fetch = async function fetch(resource, options) {
  const url = typeof resource === 'string' ? resource :
    (resource instanceof URL ? resource.href : resource.url);
  fetched.push(url);
  if(standard.has(url)) {
    return new Response(standard.get(url), {
      status: 200, headers: {'content-type': 'application/json'}
    });
  }
  if(new URL(url).origin === api.origin) {
    return networkFetch(resource, options);
  }
  throw new TypeError(`refusing to fetch ${url}: not the API under test`);
};

const {verifyCredential} = await import('@digitalcredentials/verifier-core');

const credential = JSON.parse(readFileSync(file, 'utf8'));
let result;
try {
  result = await verifyCredential({credential, knownDIDRegistries: []});
} catch(error) {
  result = {errors: [{name: 'thrown', message: error.message}]};
}
const log = (result.log || []).map(step => ({
  id: step.id,
  valid: step.valid,
  error: step.error ? (step.error.message || String(step.error)) : undefined
}));
const schema = (result.additionalInformation || []).find(entry => entry.id === 'schema_check');
const schemaResults = schema && Array.isArray(schema.results) ?
  schema.results.map(entry => ({
    schema: entry.schema,
    valid: entry.result && entry.result.valid,
    errors: ((entry.result && entry.result.errors) || []).map(
      error => `${error.instancePath || '(root)'} ${error.message}`)
  })) :
  (schema ? schema.results : null);
const errors = (result.errors || []).map(error => ({name: error.name, message: error.message}));
process.stdout.write(JSON.stringify({log, errors, schema: schemaResults, fetched}) + '\n');
