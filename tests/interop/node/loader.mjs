// Offline JSON-LD document loader for the interop scripts. It serves the contexts a VC 2.0
// with a Multikey did:key needs from the npm packages that ship them, resolves did:key
// identifiers locally, and refuses every other URL: nothing is fetched from the network.
// MRV_EXTRA_CONTEXTS may name a JSON file {"<url>": <context document>, ...} of further contexts
// (the Python tests pass open-dmrv's own context this way, so Python stays its single source).
import {readFileSync} from 'node:fs';
import {contexts as credentialsContexts} from '@digitalbazaar/credentials-context';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {driver as didKeyDriver} from '@digitalbazaar/did-method-key';
import didContext from 'did-context';
import multikeyContext from '@digitalbazaar/multikey-context';

const STATIC = new Map([
  ...credentialsContexts, // https://www.w3.org/ns/credentials/v2 (and v1, undefined-terms/v2)
  ...didContext.contexts, // https://www.w3.org/ns/did/v1
  ...multikeyContext.contexts // https://w3id.org/security/multikey/v1
]);
if(process.env.MRV_EXTRA_CONTEXTS) {
  const extra = JSON.parse(readFileSync(process.env.MRV_EXTRA_CONTEXTS, 'utf8'));
  for(const [url, document] of Object.entries(extra)) {
    STATIC.set(url, document);
  }
}

const didKey = didKeyDriver();
didKey.use({multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from});

// URLs requested, for tests that want to know what a verifier looked up.
export const loaded = [];

export async function documentLoader(url) {
  loaded.push(url);
  if(STATIC.has(url)) {
    return {contextUrl: null, documentUrl: url, document: STATIC.get(url)};
  }
  if(url.startsWith('did:key:')) {
    const document = await didKey.get({url});
    return {contextUrl: null, documentUrl: url, document};
  }
  throw new Error(`offline document loader: refusing to load ${url}`);
}
