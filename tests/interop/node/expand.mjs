#!/usr/bin/env node
// JSON-LD "safe mode" expansion of a document (stdin or FILE), as a JSON-LD-processing verifier
// would do: it fails on any term no context defines, instead of silently dropping it.
// Prints {"ok": bool, "error": string|null, "expanded": [...]|null}; exit 0 ok, 1 not.
import {readFileSync} from 'node:fs';
import jsonld from 'jsonld';
import {documentLoader} from './loader.mjs';

const arg = process.argv[2];
const doc = JSON.parse(readFileSync(arg && arg !== '-' ? arg : 0, 'utf8'));
try {
  const expanded = await jsonld.expand(doc, {documentLoader, safe: true});
  console.log(JSON.stringify({ok: true, error: null, expanded}));
} catch(e) {
  const details = e.details?.event?.message || e.details?.event?.code || '';
  console.log(JSON.stringify({ok: false, error: `${e.message}${details ? ': ' + details : ''}`, expanded: null}));
  process.exit(1);
}
