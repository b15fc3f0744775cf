// Independent verifiers of internflow's badges, run by tests/interop/test_interop.py (and by
// bench/interop_verify.py). Every command prints one JSON object on stdout.
//
//   node verify.mjs di FILE --api URL [--public URL]
//       Digital Bazaar's verifier (@digitalbazaar/vc with the eddsa-rdfc-2022 cryptosuite):
//       resolves the proof's verificationMethod and the issuer's controller document over HTTP
//       through the loader (no key is handed to it), checks validity and the status list.
//   node verify.mjs status FILE --api URL [--public URL]
//       @digitalbazaar/vc-bitstring-status-list alone: reads the live status list.
//   node verify.mjs jwt FILE --api URL [--public URL]
//       jose: verifies a VC-JWT with the JWKS fetched from /.well-known/jwks.json.
//   node verify.mjs bits FILE INDEX...
//       What @digitalbazaar/vc-bitstring-status-list reads at each index of an encodedList.
//   node verify.mjs bench FILE --api URL [--public URL] --iterations N
//       The DI verification N times on one badge (documents fetched once, then cached).
import {readFileSync} from 'node:fs';
import {parseArgs} from 'node:util';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {checkStatus, decodeList} from '@digitalbazaar/vc-bitstring-status-list';
import jsigs from 'jsonld-signatures';
import * as jose from 'jose';
import {makeDocumentLoader} from './loader.mjs';

const {values, positionals} = parseArgs({
  allowPositionals: true,
  options: {
    api: {type: 'string'},
    public: {type: 'string'},
    iterations: {type: 'string', default: '100'},
    now: {type: 'string'}
  }
});
const [command, file] = positionals;
const apiBase = values.api;
const publicBase = values.public || apiBase;

function errorText(error) {
  if(!error) {
    return null;
  }
  const errors = Array.isArray(error) ? error : (error.errors || [error]);
  return errors.map(e => (e && (e.message || String(e))) || String(e)).join('; ');
}

function statusOf(statusResult) {
  if(!statusResult) {
    return null;
  }
  return (statusResult.results || []).map(result => ({
    purpose: result.credentialStatus && result.credentialStatus.statusPurpose,
    index: result.credentialStatus && result.credentialStatus.statusListIndex,
    set: result.status
  }));
}

async function verifyDataIntegrity({credential, documentLoader}) {
  const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
  const result = await vc.verifyCredential({
    credential,
    suite,
    documentLoader,
    checkStatus,
    now: values.now ? new Date(values.now) : undefined
  });
  const proof = (result.results || [])[0] || {};
  return {
    verified: result.verified,
    error: errorText(result.error),
    proofVerified: proof.verified === true,
    verificationMethod: proof.verificationMethod && proof.verificationMethod.id,
    verificationMethodType: proof.verificationMethod && proof.verificationMethod.type,
    statusVerified: result.statusResult ? result.statusResult.verified : null,
    status: statusOf(result.statusResult),
    revoked: (statusOf(result.statusResult) || []).some(
      s => s.purpose === 'revocation' && s.set === true)
  };
}

async function main() {
  const log = [];
  const documentLoader = apiBase ? makeDocumentLoader({apiBase, publicBase, log}) : null;
  const text = readFileSync(file, 'utf8').trim();

  if(command === 'di') {
    const credential = JSON.parse(text);
    const outcome = await verifyDataIntegrity({credential, documentLoader});
    // The key really came from the API: check it independently with the Multikey library too.
    if(outcome.verificationMethod) {
      const {document} = await documentLoader(outcome.verificationMethod);
      const key = await Ed25519Multikey.from(document);
      outcome.keyController = key.controller;
    }
    return {...outcome, fetched: log};
  }

  if(command === 'status') {
    const credential = JSON.parse(text);
    const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
    const result = await checkStatus({credential, documentLoader, suite});
    return {
      verified: result.verified,
      error: errorText(result.error),
      status: statusOf(result),
      fetched: log
    };
  }

  if(command === 'jwt') {
    const header = jose.decodeProtectedHeader(text);
    const jwksUrl = publicBase.replace(/\/$/, '') + '/.well-known/jwks.json';
    const {document: jwks} = await documentLoader(jwksUrl);
    const keySet = jose.createLocalJWKSet(jwks);
    const {payload, protectedHeader} = await jose.jwtVerify(text, keySet, {
      algorithms: ['RS256'],
      typ: 'JWT',
      requiredClaims: ['iss', 'sub', 'jti', 'nbf'],
      issuer: undefined
    });
    // The kid chain: the header's kid is in the JWKS under the same kid, and dereferencing the
    // kid itself gives that very JWK.
    const listed = jwks.keys.filter(jwk => jwk.kid === header.kid);
    const {document: dereferenced} = await documentLoader(header.kid);
    const jwk = header.kid.includes('#') && dereferenced.verificationMethod ?
      dereferenced.publicKeyJwk : dereferenced;
    const sameKey = listed.length === 1 && jwk && jwk.n === listed[0].n && jwk.e === listed[0].e;
    return {
      verified: true,
      header: protectedHeader,
      claims: {iss: payload.iss, sub: payload.sub, jti: payload.jti, nbf: payload.nbf,
        exp: payload.exp},
      subjectId: payload.credentialSubject && payload.credentialSubject.id,
      issuerId: payload.issuer && (payload.issuer.id || payload.issuer),
      credentialId: payload.id,
      kidListedInJwks: listed.length,
      kidDereferencesToJwk: Boolean(sameKey),
      dereferencedKid: jwk && jwk.kid,
      fetched: log
    };
  }

  if(command === 'bits') {
    // What the status list library reads at each index of an encodedList (FILE holds it).
    const list = await decodeList({encodedList: text});
    const indexes = positionals.slice(2).map(Number);
    return {length: list.length, status: indexes.map(index => list.getStatus(index))};
  }

  if(command === 'bench') {
    const credential = JSON.parse(text);
    const cached = makeDocumentLoader({apiBase, publicBase, log, cache: new Map()});
    const iterations = Number(values.iterations);
    const first = await verifyDataIntegrity({credential, documentLoader: cached});
    if(!first.verified) {
      return {verified: false, error: first.error};
    }
    const started = process.hrtime.bigint();
    for(let i = 0; i < iterations; ++i) {
      const outcome = await verifyDataIntegrity({credential, documentLoader: cached});
      if(!outcome.verified) {
        return {verified: false, error: outcome.error, iteration: i};
      }
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {verified: true, iterations, seconds, perSecond: iterations / seconds,
      jsonldSignatures: typeof jsigs.verify === 'function'};
  }

  throw new Error(`unknown command ${command}: di, status, jwt or bench`);
}

main().then(
  outcome => {
    process.stdout.write(JSON.stringify(outcome) + '\n');
  },
  error => {
    process.stdout.write(JSON.stringify({verified: false, error: error.message}) + '\n');
    process.exitCode = 1;
  }
);
