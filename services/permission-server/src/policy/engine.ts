/**
 * The policy decision: which rule, if any, allows a principal's request on a driver, and what the grant may
 * then be (the rule's filter instantiated for this principal, driver and port; lifetime; exclusivity; the
 * resource it claims). Pure: no I/O, so every case is testable on plain data. Fails closed: any doubt is a
 * refusal with the reason.
 */
import { ServerError } from '../errors.ts';
import type { Driver, Group, Principal, Rule } from '../store/store.ts';
import { CAPABILITIES, PRIVILEGED_PORT_LIMIT } from './capabilities.ts';
import { instantiate, usesPort } from './template.ts';

/** The policy-relevant part of a grant request. */
export interface PolicyRequest {
  readonly driver: string;
  readonly dir: 'rx' | 'tx';
  readonly layer: 'task' | 'user' | 'system';
  readonly port?: number;
  /** Undefined: whatever the rule says (exclusive for `exclusive` rules, shared otherwise). */
  readonly exclusive?: boolean;
  /** Ask for one rule by id. */
  readonly rule?: string;
  /** Requested lifetime, seconds. */
  readonly ttlSec?: number;
}

/** What the policy allows. */
export interface Decision {
  readonly rule: Rule;
  /** The rule's filter for this request (a pcap-filter expression). */
  readonly filter: string;
  readonly exclusive: boolean;
  /** Exclusivity resource on the driver, e.g. `rx/udp/53`. */
  readonly resource: string;
  readonly lifetimeSec: number;
  readonly port: number | null;
}

/** Policy data a decision needs. */
export interface PolicyView {
  readonly groups: ReadonlyMap<string, Group>;
  readonly rules: readonly Rule[];
}

/** All capabilities of a principal: its own and its groups'. */
export function capabilitiesOf(principal: Principal, groups: ReadonlyMap<string, Group>): Set<string> {
  const caps = new Set(principal.capabilities);
  for (const g of principal.groups) for (const c of groups.get(g)?.capabilities ?? []) caps.add(c);
  return caps;
}

function whoMatches(rule: Rule, principal: Principal, caps: Set<string>): boolean {
  return (
    rule.who.users.includes(principal.id) ||
    rule.who.groups.some((g) => principal.groups.includes(g)) ||
    rule.who.capabilities.some((c) => caps.has(c))
  );
}

/**
 * Decides a request. Rules are tried in id order; the first that allows the request wins. Refusal:
 * EXO_ERR_POLICY_DENIED (403) with every rule's reason in `detail.reasons`.
 */
export function decide(
  principal: Principal,
  driver: Driver,
  request: PolicyRequest,
  view: PolicyView,
  stalenessSec: number,
): Decision {
  const caps = capabilitiesOf(principal, view.groups);
  const reasons: string[] = [];
  if (request.port !== undefined && request.port < PRIVILEGED_PORT_LIMIT && !caps.has(CAPABILITIES.BIND_PRIVILEGED)) {
    throw new ServerError(
      'EXO_ERR_POLICY_DENIED',
      `port ${request.port} is privileged: needs capability ${CAPABILITIES.BIND_PRIVILEGED}`,
      {
        reasons: [`port ${request.port} < ${PRIVILEGED_PORT_LIMIT} needs capability ${CAPABILITIES.BIND_PRIVILEGED}`],
      },
    );
  }
  const rules = [...view.rules].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const rule of rules) {
    if (request.rule !== undefined && rule.id !== request.rule) continue;
    const why = refusal(rule, principal, caps, driver, request);
    if (why) {
      reasons.push(`rule ${rule.id}: ${why}`);
      continue;
    }
    const values: Record<string, string | number | undefined> = {
      port: request.port,
      dir: request.dir,
      'rule.id': rule.id,
      'principal.id': principal.id,
      'principal.uid': principal.uid,
      'driver.id': driver.id,
    };
    for (const [k, v] of Object.entries(principal.attributes)) values[`principal.${k}`] = v;
    for (const [k, v] of Object.entries(driver.attributes)) values[`driver.${k}`] = v;
    const filter = instantiate(rule.filter, values);
    // Default: every rule with a port competes for that port (whatever the protocol), so two rules can never
    // hand out overlapping exclusive grants by accident; rules without a port claim per rule.
    const resourceTemplate = rule.resource ?? (usesPort(rule.filter) ? 'port/{port}' : 'rule/{rule.id}');
    const resource = `${request.dir}/${instantiate(resourceTemplate, values)}`;
    const exclusive = request.exclusive ?? rule.sharing === 'exclusive';
    const cap = Math.min(rule.maxLifetimeSec, stalenessSec);
    const lifetimeSec = Math.max(1, Math.min(request.ttlSec ?? cap, cap));
    return { rule, filter, exclusive, resource, lifetimeSec, port: request.port ?? null };
  }
  const reason =
    reasons.length === 0 ? (request.rule !== undefined ? `no rule ${request.rule}` : 'no rules') : reasons.join('; ');
  throw new ServerError(
    'EXO_ERR_POLICY_DENIED',
    `no rule lets ${principal.id} ${request.dir === 'rx' ? 'receive' : 'send'} on ${driver.id}: ${reason}`,
    {
      reasons,
    },
  );
}

/** Why `rule` does not allow the request, or undefined when it does. */
function refusal(
  rule: Rule,
  principal: Principal,
  caps: Set<string>,
  driver: Driver,
  r: PolicyRequest,
): string | undefined {
  if (!whoMatches(rule, principal, caps)) return 'does not apply to this principal';
  if (rule.dir !== r.dir) return `is for ${rule.dir}`;
  if (rule.layer !== r.layer) return `is for layer ${rule.layer}`;
  if (rule.drivers.length > 0 && !rule.drivers.includes(driver.id)) return 'is not for this driver';
  const hasPort = usesPort(rule.filter);
  if (hasPort && r.port === undefined) return 'needs a port';
  if (!hasPort && r.port !== undefined) return 'has no port';
  if (r.port !== undefined && !rule.ports.some((p) => p.from <= r.port! && r.port! <= p.to)) {
    return `port ${r.port} not in ${rule.ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)).join(',') || 'no ports'}`;
  }
  if (r.exclusive === true && rule.sharing === 'shared') return 'allows only shared grants';
  if (r.exclusive === false && rule.sharing === 'exclusive') return 'allows only exclusive grants';
  return undefined;
}
