// did:web as a relying party meets it, run by tests/interop/test_interop.py: two independent
// did:web resolvers resolve each badge issuer's DID over HTTPS and verify the badge with the
// keys they resolved. Prints one JSON object on stdout.
//
//   node didweb.mjs FILE... --api URL --public https://localhost:PORT --cert PEM --key PEM
//
// --public is the deployment's public base URL as its badges name it (https). This script
// serves it, with the certificate given, in front of the API under test (plain HTTP on
// loopback), as a deployment's TLS-terminating proxy would; the test trusts the certificate's
// authority through NODE_EXTRA_CA_CERTS. Nothing else is mapped or shortcut: each resolver
// builds the https:// URL from the DID by itself and fetches it over TLS.
//
// The resolvers:
//   - did-resolver with web-did-resolver (the Decentralized Identity Foundation's);
//   - @digitalbazaar/did-io's CachedResolver with @digitalbazaar/did-method-web's driver.
// For each badge and each resolver: the issuer's DID document (its id, assertionMethod), then
// the badge verified. A Data Integrity badge by Digital Bazaar's verifier, whose document loader
// gives DIDs and DID URLs from that resolver alone (the standard contexts from the bundled
// copies, status lists fetched over HTTPS); a VC-JWT by jose, with the JWK of the verification
// method its kid names, taken from the resolved DID document.
import {readFileSync} from 'node:fs';
import {createServer as createHttpsServer} from 'node:https';
import {request as httpRequest} from 'node:http';
import {parseArgs} from 'node:util';
import {Resolver} from 'did-resolver';
import {getResolver as webDidResolver} from 'web-did-resolver';
import {CachedResolver} from '@digitalbazaar/did-io';
import {driver as didWebDriver} from '@digitalbazaar/did-method-web';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import * as jose from 'jose';
import {bundledContexts} from './loader.mjs';

const {values, positionals} = parseArgs({
  allowPositionals: true,
  options: {
    api: {type: 'string'},
    public: {type: 'string'},
    cert: {type: 'string'},
    key: {type: 'string'}
  }
});
const api = new URL(values.api);
const publicBase = new URL(values.public);
const contexts = bundledContexts();

/** The TLS front: every request to --public goes to the API, and is logged by its path. */
async function serveTls(log) {
  const options = {cert: readFileSync(values.cert), key: readFileSync(values.key)};
  const handler = (incoming, outgoing) => {
    log.push(incoming.url);
    const upstream = httpRequest({
      host: api.hostname, port: api.port, path: incoming.url, method: incoming.method,
      headers: {...incoming.headers, host: api.host}
    }, answer => {
      outgoing.writeHead(answer.statusCode, answer.headers);
      answer.pipe(outgoing);
    });
    upstream.on('error', error => {
      outgoing.writeHead(502);
      outgoing.end(String(error));
    });
    incoming.pipe(upstream);
  };
  const servers = [];
  // localhost is 127.0.0.1 or ::1, whichever a client's resolver picks: listen on both.
  for(const host of ['127.0.0.1', '::1']) {
    const server = createHttpsServer(options, handler);
    try {
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number(publicBase.port), host, resolve);
      });
      servers.push(server);
    } catch(error) {
      if(host === '127.0.0.1') {
        throw error;
      }
    }
  }
  return () => Promise.all(servers.map(server => new Promise(done => {
    server.closeAllConnections();
    server.close(done);
  })));
}

/** Each resolver as one function: DID or DID URL -> the DID document, or the node it names. */
function resolvers() {
  const dif = new Resolver(webDidResolver());
  const digitalBazaar = new CachedResolver();
  digitalBazaar.use(didWebDriver());
  return {
    'web-did-resolver': async url => {
      const {didDocument, didResolutionMetadata} = await dif.resolve(url);
      if(didResolutionMetadata.error || !didDocument) {
        throw new Error(`${url}: ${didResolutionMetadata.error} ${didResolutionMetadata.message}`);
      }
      const fragment = url.includes('#');
      if(!fragment) {
        return didDocument;
      }
      const node = (didDocument.verificationMethod || []).find(method => method.id === url);
      if(!node) {
        throw new Error(`${url} is not a verification method of ${didDocument.id}`);
      }
      return {'@context': didDocument['@context'], ...node};
    },
    'did-method-web': async url => digitalBazaar.get({url})
  };
}

function loaderFor(resolve) {
  return async function documentLoader(url) {
    if(contexts.has(url)) {
      return {contextUrl: null, documentUrl: url, document: structuredClone(contexts.get(url))};
    }
    if(url.startsWith('did:')) {
      return {contextUrl: null, documentUrl: url, document: await resolve(url)};
    }
    if(url.startsWith(publicBase.origin + '/')) {
      const response = await fetch(url, {headers: {accept: 'application/ld+json'}});
      if(!response.ok) {
        throw new Error(`GET ${url} answered HTTP ${response.status}`);
      }
      return {contextUrl: null, documentUrl: url, document: await response.json()};
    }
    throw new Error(`refusing to load ${url}`);
  };
}

function errorText(error) {
  if(!error) {
    return null;
  }
  const errors = Array.isArray(error) ? error : (error.errors || [error]);
  return errors.map(e => (e && (e.message || String(e))) || String(e)).join('; ');
}

async function verifyWith(name, resolve, text, log) {
  const jwt = !text.startsWith('{');
  const claims = jwt ? jose.decodeJwt(text) : JSON.parse(text);
  const issuer = claims.issuer && (claims.issuer.id || claims.issuer);
  const outcome = {resolver: name, issuer};
  const didDocument = await resolve(issuer);
  outcome.didDocumentId = didDocument.id;
  outcome.assertionMethod = (didDocument.assertionMethod || [])
    .map(item => item.id || item);
  if(jwt) {
    const {kid, alg} = jose.decodeProtectedHeader(text);
    const method = (didDocument.verificationMethod || []).find(item => item.id === kid);
    if(!method || !outcome.assertionMethod.includes(kid)) {
      return {...outcome, verified: false, error: `${kid} is not an assertion key of ${issuer}`};
    }
    const key = await jose.importJWK(method.publicKeyJwk, alg);
    const {payload} = await jose.jwtVerify(text, key, {algorithms: ['RS256'], issuer});
    return {...outcome, verified: true, verificationMethod: kid, jti: payload.jti,
      fetched: [...log]};
  }
  const result = await vc.verifyCredential({
    credential: claims,
    suite: new DataIntegrityProof({cryptosuite: eddsaRdfc2022}),
    documentLoader: loaderFor(resolve),
    checkStatus
  });
  const proof = (result.results || [])[0] || {};
  const status = ((result.statusResult && result.statusResult.results) || []);
  return {
    ...outcome,
    verified: result.verified,
    error: errorText(result.error),
    proofVerified: proof.verified === true,
    verificationMethod: proof.verificationMethod && proof.verificationMethod.id,
    statusVerified: result.statusResult ? result.statusResult.verified : null,
    revoked: status.some(s => s.credentialStatus.statusPurpose === 'revocation' && s.status),
    fetched: [...log]
  };
}

async function main() {
  const log = [];
  const close = await serveTls(log);
  try {
    const badges = [];
    for(const file of positionals) {
      const text = readFileSync(file, 'utf8').trim();
      const outcomes = {};
      // Fresh resolvers for each badge: nothing is cached from one badge to the next.
      for(const [name, resolve] of Object.entries(resolvers())) {
        log.length = 0;
        try {
          outcomes[name] = await verifyWith(name, resolve, text, log);
        } catch(error) {
          outcomes[name] = {resolver: name, verified: false, error: String(error && error.stack)};
        }
      }
      badges.push({file, resolvers: outcomes});
    }
    return {badges};
  } finally {
    await close();
  }
}

main().then(
  outcome => process.stdout.write(JSON.stringify(outcome) + '\n'),
  error => {
    process.stdout.write(JSON.stringify({error: String(error && error.stack)}) + '\n');
    process.exitCode = 1;
  });
