import { describe, expect, it } from 'vitest';
import { ServerError } from '../src/errors.ts';
import { decide, type PolicyRequest, type PolicyView } from '../src/policy/engine.ts';
import { instantiate } from '../src/policy/template.ts';
import type { Driver, Group, Principal, Rule } from '../src/store/store.ts';

const principal = (o: Partial<Principal> = {}): Principal => ({
  id: 'alice',
  uid: 1000,
  groups: ['users'],
  capabilities: [],
  admin: false,
  attributes: { net: '10.77.0.0/24' },
  disabled: false,
  version: 1,
  ...o,
});
const driver: Driver = { id: 'drv1', attributes: { ip: '10.77.0.2' }, version: 1 };
const rule = (o: Partial<Rule> = {}): Rule => ({
  id: 'high-udp',
  who: { users: [], groups: ['users'], capabilities: [] },
  dir: 'rx',
  layer: 'task',
  filter: 'udp and dst host {driver.ip} and dst port {port}',
  ports: [{ from: 1024, to: 65535 }],
  drivers: [],
  maxLifetimeSec: 120,
  sharing: 'either',
  description: '',
  version: 1,
  ...o,
});
const groups = new Map<string, Group>([
  ['users', { id: 'users', capabilities: [], description: '', version: 1 }],
  ['dns', { id: 'dns', capabilities: ['bind-privileged'], description: '', version: 1 }],
]);
const view = (...rules: Rule[]): PolicyView => ({ groups, rules });
const req = (o: Partial<PolicyRequest> = {}): PolicyRequest => ({
  driver: 'drv1',
  dir: 'rx',
  layer: 'task',
  port: 5353,
  ...o,
});

function denied(fn: () => unknown): ServerError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ServerError);
    return err as ServerError;
  }
  throw new Error('expected a refusal');
}

describe('policy decisions', () => {
  it('allows a covered request and instantiates the filter for principal, driver and port', () => {
    const d = decide(principal(), driver, req(), view(rule()), 300);
    expect(d).toMatchObject({
      filter: 'udp and dst host 10.77.0.2 and dst port 5353',
      exclusive: false,
      lifetimeSec: 120,
      port: 5353,
    });
    expect(d.resource).toBe('rx/port/5353');
  });

  it('refuses a request no rule covers, with the reason of every rule', () => {
    const e = denied(() =>
      decide(principal({ groups: [] }), driver, req(), view(rule(), rule({ id: 'tx', dir: 'tx' })), 300),
    );
    expect(e.code).toBe('EXO_ERR_POLICY_DENIED');
    expect(e.status).toBe(403);
    expect(e.message).toMatch(/rule high-udp: does not apply to this principal/);
    expect(e.detail?.reasons).toHaveLength(2);
  });

  it('refuses a port outside the allowed ranges', () => {
    expect(denied(() => decide(principal(), driver, req({ port: 81 }), view(rule()), 300)).message).toMatch(
      /privileged|not in/,
    );
    expect(
      denied(() =>
        decide(principal(), driver, req({ port: 70000 }), view(rule({ ports: [{ from: 2000, to: 3000 }] })), 300),
      ).message,
    ).toMatch(/not in 2000-3000/);
  });

  it('needs bind-privileged for ports below 1024, even when a rule lists them', () => {
    const dnsRule = rule({
      id: 'dns',
      who: { users: ['alice'], groups: ['dns'], capabilities: [] },
      ports: [{ from: 53, to: 53 }],
    });
    expect(denied(() => decide(principal(), driver, req({ port: 53 }), view(dnsRule), 300)).message).toMatch(
      /bind-privileged/,
    );
    expect(decide(principal({ groups: ['dns'] }), driver, req({ port: 53 }), view(dnsRule), 300).rule.id).toBe('dns');
    expect(
      decide(principal({ capabilities: ['bind-privileged'] }), driver, req({ port: 53 }), view(dnsRule), 300).rule.id,
    ).toBe('dns');
  });

  it('matches by capability', () => {
    const monitor = rule({
      id: 'monitor',
      who: { users: [], groups: [], capabilities: ['monitor-all'] },
      filter: 'ip',
      ports: [],
    });
    expect(denied(() => decide(principal(), driver, req({ port: undefined }), view(monitor), 300)).code).toBe(
      'EXO_ERR_POLICY_DENIED',
    );
    expect(
      decide(principal({ capabilities: ['monitor-all'] }), driver, req({ port: undefined }), view(monitor), 300)
        .resource,
    ).toBe('rx/rule/monitor');
  });

  it('caps lifetimes by the rule and by the staleness bound', () => {
    expect(decide(principal(), driver, req({ ttlSec: 30 }), view(rule()), 300).lifetimeSec).toBe(30);
    expect(decide(principal(), driver, req({ ttlSec: 3600 }), view(rule()), 300).lifetimeSec).toBe(120);
    expect(decide(principal(), driver, req(), view(rule({ maxLifetimeSec: 3600 })), 300).lifetimeSec).toBe(300);
  });

  it('honours exclusive and shared rules', () => {
    expect(decide(principal(), driver, req(), view(rule({ sharing: 'exclusive' })), 300).exclusive).toBe(true);
    expect(
      denied(() => decide(principal(), driver, req({ exclusive: false }), view(rule({ sharing: 'exclusive' })), 300))
        .message,
    ).toMatch(/only exclusive/);
    expect(
      denied(() => decide(principal(), driver, req({ exclusive: true }), view(rule({ sharing: 'shared' })), 300))
        .message,
    ).toMatch(/only shared/);
    expect(decide(principal(), driver, req({ exclusive: true }), view(rule()), 300).exclusive).toBe(true);
  });

  it('restricts by driver, direction, layer and named rule', () => {
    expect(denied(() => decide(principal(), driver, req(), view(rule({ drivers: ['drv9'] })), 300)).message).toMatch(
      /not for this driver/,
    );
    expect(denied(() => decide(principal(), driver, req({ dir: 'tx' }), view(rule()), 300)).message).toMatch(
      /is for rx/,
    );
    expect(denied(() => decide(principal(), driver, req({ layer: 'system' }), view(rule()), 300)).message).toMatch(
      /layer task/,
    );
    expect(denied(() => decide(principal(), driver, req({ rule: 'nope' }), view(rule()), 300)).message).toMatch(
      /no rule nope/,
    );
    expect(denied(() => decide(principal(), driver, req({ port: undefined }), view(rule()), 300)).message).toMatch(
      /needs a port/,
    );
  });

  it('uses a shared resource template so rules about the same port compete', () => {
    const d = decide(principal(), driver, req(), view(rule({ resource: 'udp/{port}' })), 300);
    expect(d.resource).toBe('rx/udp/5353');
  });

  it('never lets an attribute inject filter syntax', () => {
    const evil = principal({ attributes: { net: '1.2.3.4 or 1=1' } });
    const r = rule({ filter: 'udp and src net {principal.net} and dst port {port}' });
    expect(denied(() => decide(evil, driver, req(), view(r), 300)).code).toBe('EXO_ERR_POLICY_TEMPLATE');
    expect(() => instantiate('{missing}', {})).toThrow(/no value/);
    expect(instantiate('uid {principal.uid}', { 'principal.uid': 7 })).toBe('uid 7');
  });
});
