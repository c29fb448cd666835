#!/usr/bin/env node
// Issue a credential with Digital Bazaar's eddsa-jcs-2022 implementation, for the reverse interop
// check. Reads an unsigned VC 2.0 (JSON) on stdin, generates a throw-away Ed25519 did:key (never
// written anywhere), sets it as `issuer`, signs, and prints {"did": ..., "credential": {...}}.
import {readFileSync} from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {createSignCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import {documentLoader} from './loader.mjs';

const credential = JSON.parse(readFileSync(0, 'utf8'));
const probe = await Ed25519Multikey.generate();
const did = `did:key:${probe.publicKeyMultibase}`;
const keyPair = await Ed25519Multikey.from({
  ...(await probe.export({publicKey: true, secretKey: true})),
  id: `${did}#${probe.publicKeyMultibase}`,
  controller: did
});
credential.issuer = did;
const suite = new DataIntegrityProof({signer: keyPair.signer(), cryptosuite: createSignCryptosuite()});
const signed = await vc.issue({credential, suite, documentLoader});
console.log(JSON.stringify({did, credential: signed}));
