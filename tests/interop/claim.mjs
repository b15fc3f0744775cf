// A wallet claims a badge from internflow with OpenID for Verifiable Credential Issuance 1.0 (the
// pre-authorized code flow), run by tests/interop/test_wallet_claim.py. The wallet side is the
// OpenWallet Foundation's @openid4vc/openid4vci client, or Sphereon's @sphereon/oid4vci-client
// (the `sphereon` command); the wallet's key is made here, and what it receives is verified with
// Digital Bazaar's verifier (the issuer key fetched over HTTP). Every command prints one JSON
// object on stdout.
//
//   node claim.mjs claim OFFER_URL --api URL [--tx-code CODE] [--alg EdDSA|ES256]
//                  [--key-as did:key|did:jwk|jwk]
//       Resolve the offer (by value, or fetched from its credential_offer_uri) and the issuer's
//       metadata, redeem the code, ask for a c_nonce, prove possession of a fresh key and
//       receive the credential; then verify it.
//   node claim.mjs sphereon OFFER_URL --api URL --tx-code CODE [--alg EdDSA|ES256]
//       The same claim by Sphereon's client: it reads the offer and the metadata, redeems the
//       code with the transaction code, fetches a c_nonce from the nonce endpoint, has the
//       proof signed (a did:key here) and receives the credential; then it is verified.
//   node claim.mjs token OFFER_URL --api URL [--tx-code CODE]
//       Only redeem the code: the token endpoint's answer, or its OAuth error.
//   node claim.mjs stale-nonce OFFER_URL --api URL --tx-code CODE --second-offer OFFER_URL
//       Redeem the code and receive the credential; the same access token again (spent:
//       invalid_token, 401); then, with the second offer's token, the first c_nonce again
//       (invalid_nonce), a nonce that is not the issuer's (invalid_nonce), a proof without a
//       nonce (invalid_proof), and finally a fresh c_nonce, which that token is still good for.
import {createHash, randomBytes} from 'node:crypto';
import {parseArgs} from 'node:util';
import * as jose from 'jose';
import {
  Openid4vciClient, Openid4vciRetrieveCredentialsError, setGlobalConfig
} from '@openid4vc/openid4vci';
import {clientAuthenticationAnonymous, Oauth2ClientErrorResponseError} from '@openid4vc/oauth2';
import {OpenID4VCIClientV1_0_15} from '@sphereon/oid4vci-client';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import {makeDocumentLoader} from './loader.mjs';

const {values, positionals} = parseArgs({
  allowPositionals: true,
  options: {
    api: {type: 'string'},
    'tx-code': {type: 'string'},
    alg: {type: 'string', default: 'EdDSA'},
    'key-as': {type: 'string', default: 'did:key'},
    'second-offer': {type: 'string'}
  }
});
const [command, offerUrl] = positionals;
// The issuer under test answers on loopback over plain HTTP (a real one is https only).
setGlobalConfig({allowInsecureUrls: true});

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
function base58btc(bytes) {
  let number = BigInt('0x' + (Buffer.from(bytes).toString('hex') || '0'));
  let text = '';
  while(number > 0n) {
    text = B58[Number(number % 58n)] + text;
    number /= 58n;
  }
  for(const byte of bytes) {
    if(byte !== 0) {
      break;
    }
    text = '1' + text;
  }
  return text;
}

/** A fresh holder key: the signer the client names in the proof header, and the DID. */
async function holderKey(alg, keyAs) {
  const {publicKey, privateKey} = await jose.generateKeyPair(alg, {
    crv: alg === 'EdDSA' ? 'Ed25519' : undefined, extractable: true
  });
  const jwk = await jose.exportJWK(publicKey);
  delete jwk.alg;
  let did;
  if(keyAs === 'did:key') {
    let multicodec;
    if(alg === 'EdDSA') {
      multicodec = Buffer.concat([Buffer.from([0xed, 0x01]), Buffer.from(jwk.x, 'base64url')]);
    } else {
      const x = Buffer.from(jwk.x, 'base64url');
      const y = Buffer.from(jwk.y, 'base64url');
      const compressed = Buffer.concat([Buffer.from([2 + (y[y.length - 1] & 1)]), x]);
      multicodec = Buffer.concat([Buffer.from([0x80, 0x24]), compressed]);
    }
    const id = 'z' + base58btc(multicodec);
    did = `did:key:${id}`;
    return {signer: {method: 'did', didUrl: `${did}#${id}`, alg}, did, privateKey, jwk};
  }
  const members = jwk.kty === 'OKP' ? {crv: jwk.crv, kty: jwk.kty, x: jwk.x} :
    {crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y};
  did = 'did:jwk:' + Buffer.from(JSON.stringify(members)).toString('base64url');
  if(keyAs === 'did:jwk') {
    return {signer: {method: 'did', didUrl: `${did}#0`, alg}, did, privateKey, jwk};
  }
  return {signer: {method: 'jwk', publicJwk: jwk, alg}, did, privateKey, jwk};
}

function client(privateKeys) {
  return new Openid4vciClient({
    callbacks: {
      fetch: (...args) => fetch(...args),
      hash: async (data, algorithm) => createHash(algorithm.replace('-', '').toLowerCase())
        .update(data).digest(),
      generateRandom: async length => randomBytes(length),
      clientAuthentication: clientAuthenticationAnonymous(),
      signJwt: async (signer, {header, payload}) => {
        const privateKey = privateKeys.get(signer.didUrl || 'jwk');
        const jwt = await new jose.SignJWT(payload).setProtectedHeader(header).sign(privateKey);
        return {jwt, signerJwk: signer.publicJwk};
      }
    }
  });
}

function oauthError(error) {
  if(error instanceof Oauth2ClientErrorResponseError) {
    return {status: error.response.status, ...error.errorResponse};
  }
  if(error instanceof Openid4vciRetrieveCredentialsError) {
    const data = error.response.credentialErrorResponseResult?.data || {};
    // What the client read from WWW-Authenticate (RFC 6750), for a 401.
    const challenge = (error.response.wwwAuthenticate || [])[0];
    return {
      status: error.response.response?.status, ...data,
      challenge: challenge ? {scheme: challenge.scheme, error: challenge.error} : null
    };
  }
  throw error;
}

async function redeem(wallet, offer, metadata) {
  try {
    const {accessTokenResponse} = await wallet.retrievePreAuthorizedCodeAccessTokenFromOffer({
      credentialOffer: offer, issuerMetadata: metadata, txCode: values['tx-code']
    });
    return {ok: true, accessTokenResponse};
  } catch(error) {
    return {ok: false, ...oauthError(error)};
  }
}

async function requestCredential(wallet, metadata, offer, accessToken, holder, nonce) {
  const configurationId = offer.credential_configuration_ids[0];
  const {jwt} = await wallet.createCredentialRequestJwtProof({
    issuerMetadata: metadata, credentialConfigurationId: configurationId, signer: holder.signer,
    nonce, issuedAt: new Date()
  });
  try {
    const response = await wallet.retrieveCredentials({
      issuerMetadata: metadata, credentialConfigurationId: configurationId, accessToken,
      proofs: {jwt: [jwt]}
    });
    return {ok: true, response: response.credentialResponse};
  } catch(error) {
    return {ok: false, ...oauthError(error)};
  }
}

async function verifyReceived(credential) {
  const log = [];
  const documentLoader = makeDocumentLoader({apiBase: values.api, log});
  const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
  const result = await vc.verifyCredential({credential, suite, documentLoader, checkStatus});
  const proof = (result.results || [])[0] || {};
  const errors = result.error ? (result.error.errors || [result.error]) : [];
  return {
    verified: result.verified,
    error: errors.map(e => e.message || String(e)).join('; ') || null,
    proofVerified: proof.verified === true,
    verificationMethod: proof.verificationMethod && proof.verificationMethod.id,
    revoked: ((result.statusResult && result.statusResult.results) || []).some(
      r => r.credentialStatus.statusPurpose === 'revocation' && r.status === true),
    fetched: log
  };
}

/** The claim by Sphereon's client, from the offer URL to the credential, and its check. */
async function sphereonClaim(holder) {
  const signCallback = async ({header, payload}) => new jose.SignJWT(payload)
    .setProtectedHeader(header).sign(holder.privateKey);
  const client = await OpenID4VCIClientV1_0_15.fromURI({
    uri: offerUrl, kid: holder.signer.didUrl, alg: values.alg, retrieveServerMetadata: true
  });
  const configurationId = client.getCredentialOfferConfigurationIds()[0];
  let token;
  try {
    token = await client.acquireAccessToken({pin: values['tx-code']});
  } catch(error) {
    return {command, ok: false, step: 'token', message: String(error && error.message)};
  }
  const response = await client.acquireCredentials({
    credentialConfigurationId: configurationId, format: 'ldp_vc',
    proofCallbacks: {signCallback}, kid: holder.signer.didUrl, alg: values.alg
  });
  // The client answers with the credential response itself (and throws on an error).
  const credential = response.credentials[0].credential;
  return {
    command,
    ok: true,
    version: client.version(),
    configurationId,
    tokenType: token.token_type,
    nonceEndpoint: client.getNonceEndpoint(),
    holder: holder.did,
    credential,
    verification: await verifyReceived(credential)
  };
}

async function main() {
  const holder = await holderKey(values.alg, values['key-as']);
  if(command === 'sphereon') {
    return sphereonClaim(holder);
  }
  const wallet = client(new Map([[holder.signer.didUrl || 'jwk', holder.privateKey]]));
  const offer = await wallet.resolveCredentialOffer(offerUrl);
  const metadata = await wallet.resolveIssuerMetadata(offer.credential_issuer);
  const redeemed = await redeem(wallet, offer, metadata);
  if(command === 'token' || !redeemed.ok) {
    return {command, ...redeemed};
  }
  const accessToken = redeemed.accessTokenResponse.access_token;

  if(command === 'claim') {
    const {c_nonce: nonce} = await wallet.requestNonce({issuerMetadata: metadata});
    const received = await requestCredential(wallet, metadata, offer, accessToken, holder, nonce);
    if(!received.ok) {
      return {command, redeemed: true, ...received};
    }
    const credential = received.response.credentials[0].credential;
    return {
      command,
      ok: true,
      version: metadata.originalDraftVersion,
      configurationId: offer.credential_configuration_ids[0],
      // The offer as the client resolved it (fetched, for an offer by reference).
      offer,
      txCodeAsked: Boolean(
        offer.grants['urn:ietf:params:oauth:grant-type:pre-authorized_code'].tx_code),
      holder: holder.did,
      credential,
      verification: await verifyReceived(credential)
    };
  }

  if(command === 'stale-nonce') {
    const {c_nonce: nonce} = await wallet.requestNonce({issuerMetadata: metadata});
    const first = await requestCredential(wallet, metadata, offer, accessToken, holder, nonce);
    const {c_nonce: other} = await wallet.requestNonce({issuerMetadata: metadata});
    const spent = await requestCredential(wallet, metadata, offer, accessToken, holder, other);
    const second = await wallet.resolveCredentialOffer(values['second-offer']);
    const redeemedAgain = await redeem(wallet, second, metadata);
    if(!redeemedAgain.ok) {
      return {command, first: {ok: first.ok}, spent, secondRedeemed: redeemedAgain};
    }
    const token = redeemedAgain.accessTokenResponse.access_token;
    const again = await requestCredential(wallet, metadata, second, token, holder, nonce);
    const forged = await requestCredential(
      wallet, metadata, second, token, holder, 'not-a-nonce-of-this-issuer');
    const missing = await requestCredential(wallet, metadata, second, token, holder, undefined);
    const {c_nonce: fresh} = await wallet.requestNonce({issuerMetadata: metadata});
    const last = await requestCredential(wallet, metadata, second, token, holder, fresh);
    return {command, first: {ok: first.ok}, spent, again, forged, missing, last: {ok: last.ok}};
  }
  throw new Error(`unknown command ${command}`);
}

main().then(
  result => console.log(JSON.stringify(result)),
  error => {
    console.log(JSON.stringify({ok: false, thrown: String(error && error.stack || error)}));
    process.exitCode = 1;
  });
