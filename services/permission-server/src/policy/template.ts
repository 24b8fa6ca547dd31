/**
 * Filter templates: `{port}`, `{principal.uid}`, `{principal.ATTR}`, `{driver.id}`, `{driver.ATTR}`,
 * `{rule.id}`, `{dir}`. A value is substituted only if it is a plain token (letters, digits and `.:-_/`),
 * so no attribute can inject filter syntax such as `or`, parentheses or spaces.
 */
import { ServerError } from '../errors.ts';

const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9_.-]*)\}/g;
const SAFE_VALUE = /^[A-Za-z0-9.:_/-]{1,64}$/;

/** Substitutes every placeholder; throws EXO_ERR_POLICY_TEMPLATE for an unknown name or an unsafe value. */
export function instantiate(template: string, values: Readonly<Record<string, string | number | undefined>>): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const value = values[name];
    if (value === undefined)
      throw new ServerError('EXO_ERR_POLICY_TEMPLATE', `template names {${name}}, which has no value`);
    const text = String(value);
    if (!SAFE_VALUE.test(text))
      throw new ServerError('EXO_ERR_POLICY_TEMPLATE', `value of {${name}} is not a plain token`);
    return text;
  });
}

/** Whether a template uses `{port}`. */
export function usesPort(template: string): boolean {
  return /\{port\}/.test(template);
}
