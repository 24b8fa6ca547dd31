import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The Python that has scapy: Debian's python3-scapy lives under /usr/bin/python3 even when pyenv shadows it. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * Runs a Python snippet that fills a dict `out` of name -> bytes with scapy, and returns the frames.
 */
export function scapyFrames(body: string): Record<string, Uint8Array> {
  const script = `
import json, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import *
out = {}
${body}
print(json.dumps({k: bytes(v).hex() for k, v in out.items()}))
`;
  const text = execFileSync(PYTHON, ['-c', script], { encoding: 'utf8', timeout: 60_000 });
  const parsed = JSON.parse(text.trim().split('\n').pop() ?? '{}') as Record<string, string>;
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, Uint8Array.from(Buffer.from(v, 'hex'))]));
}
