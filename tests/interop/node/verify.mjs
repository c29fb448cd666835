#!/usr/bin/env node
// Verify a W3C VC 2.0 secured with an eddsa-jcs-2022 DataIntegrityProof using Digital Bazaar's
// implementation. Usage: node verify.mjs [FILE|-]   (default: read the credential from stdin)
// Prints one JSON line {"verified": bool, "error": string|null}; exit 0 verified, 1 not, 2 bad input.
import {readFileSync} from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {createVerifyCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import {documentLoader} from './loader.mjs';

function messages(err) {
  if(!err) {
    return [];
  }
  const nested = Array.isArray(err.errors) ? err.errors.flatMap(messages) : [];
  return nested.length ? nested : [String(err.message || err)];
}

const arg = process.argv[2];
let credential;
try {
  credential = JSON.parse(readFileSync(arg && arg !== '-' ? arg : 0, 'utf8'));
} catch(e) {
  console.log(JSON.stringify({verified: false, error: `cannot read credential: ${e.message}`}));
  process.exit(2);
}

const suite = new DataIntegrityProof({cryptosuite: createVerifyCryptosuite()});
let verified = false;
let errors = [];
try {
  const result = await vc.verifyCredential({credential, suite, documentLoader});
  verified = result.verified === true;
  if(!verified) {
    errors = messages(result.error);
    for(const r of result.results || []) {
      errors.push(...messages(r.error));
    }
  }
} catch(e) {
  errors = messages(e);
}
const error = verified ? null : ([...new Set(errors)].join('; ') || 'not verified');
console.log(JSON.stringify({verified, error}));
process.exit(verified ? 0 : 1);
