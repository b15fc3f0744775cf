// The document loader the independent verifiers run with: the standard JSON-LD contexts from the
// project's bundled copies (badges/contexts, each checked against the sha256 in its SOURCES.md),
// and everything else fetched over HTTP from the API under test, and from nowhere else.
//
// `publicBase` is the deployment's public base URL as its badges name it; `apiBase` is where the
// API under test answers. They differ only where a TLS-terminating proxy would sit in production
// (a did:web deployment needs an https:// public URL; the test serves plain HTTP on loopback and
// this loader plays the proxy). did:web DIDs of that host are resolved the way did:web says:
// did:web:<host> -> https://<host>/.well-known/did.json, and a '#fragment' selects one
// verification method of the DID document.
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const contextsDir = join(here, '..', '..', 'badges', 'contexts');

/** URL -> parsed context, from the rows of badges/contexts/SOURCES.md (URL, file, ..., sha256). */
export function bundledContexts() {
  const table = readFileSync(join(contextsDir, 'SOURCES.md'), 'utf8');
  const contexts = new Map();
  for(const line of table.split('\n')) {
    const cells = [...line.matchAll(/`([^`]+)`/g)].map(match => match[1]);
    if(!line.startsWith('| `https://') || cells.length < 3) {
      continue;
    }
    const [url, file] = cells;
    const sha256 = cells[cells.length - 1];
    const bytes = readFileSync(join(contextsDir, file));
    const actual = createHash('sha256').update(bytes).digest('hex');
    if(actual !== sha256) {
      throw new Error(`bundled context ${file} has sha256 ${actual}, SOURCES.md says ${sha256}`);
    }
    contexts.set(url, JSON.parse(bytes.toString('utf8')));
  }
  return contexts;
}

export function makeDocumentLoader({apiBase, publicBase = apiBase, log = [], cache = null}) {
  const contexts = bundledContexts();
  const api = new URL(apiBase);
  const pub = new URL(publicBase);
  const publicPrefix = pub.href.replace(/\/$/, '');

  function toApi(url) {
    // Only URLs under the deployment's public base URL, mapped onto the API under test.
    if(!(url === publicPrefix || url.startsWith(publicPrefix + '/'))) {
      throw new Error(`refusing to fetch ${url}: not under ${publicPrefix}`);
    }
    return apiBase.replace(/\/$/, '') + url.slice(publicPrefix.length);
  }

  async function fetchJson(url) {
    if(cache && cache.has(url)) {
      return cache.get(url);
    }
    const target = toApi(url);
    if(new URL(target).origin !== api.origin) {
      throw new Error(`refusing to fetch ${target}`);
    }
    log.push(url);
    const response = await fetch(target, {
      headers: {accept: 'application/ld+json, application/json'},
      redirect: 'error'
    });
    if(!response.ok) {
      throw new Error(`GET ${url} answered HTTP ${response.status}`);
    }
    const document = await response.json();
    if(cache) {
      cache.set(url, document);
    }
    return document;
  }

  function didWebUrl(did) {
    // did:web:<host>[%3A<port>][:path...] -> https://<host>[:port]/<path>/did.json
    const [host, ...path] = did.slice('did:web:'.length).split(':').map(decodeURIComponent);
    const where = path.length ? `/${path.join('/')}/did.json` : '/.well-known/did.json';
    return `https://${host}${where}`;
  }

  return async function documentLoader(url) {
    if(contexts.has(url)) {
      return {contextUrl: null, documentUrl: url, document: structuredClone(contexts.get(url))};
    }
    if(url.startsWith('did:web:')) {
      const [did, fragment] = url.split('#');
      const didDocument = await fetchJson(didWebUrl(did));
      if(didDocument.id !== did) {
        throw new Error(`the DID document at ${didWebUrl(did)} is for ${didDocument.id}`);
      }
      if(fragment === undefined) {
        return {contextUrl: null, documentUrl: url, document: didDocument};
      }
      const method = (didDocument.verificationMethod || []).find(item => item.id === url);
      if(!method) {
        throw new Error(`${did} has no verification method ${url}`);
      }
      const document = {'@context': didDocument['@context'], ...method};
      return {contextUrl: null, documentUrl: url, document};
    }
    if(url.startsWith('http://') || url.startsWith('https://')) {
      // A plain HTTP loader: the fragment is not the server's business (it gets the whole
      // document), exactly what a verifier without fragment handling does.
      const document = await fetchJson(url.split('#')[0]);
      return {contextUrl: null, documentUrl: url, document};
    }
    throw new Error(`refusing to load ${url}`);
  };
}
