import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { InputError } from './inputs/yaml-source.ts';
import { lazyValidator } from './lazy-validator.ts';
import { isSeverity, type Severity } from './types.ts';

/** What an organisation decides for its own estate; everything else is fixed by the rules. */
export interface ScanConfig {
  /** Image registries (host, or host/path prefix) that images may come from; empty disables the check. */
  allowedRegistries: string[];
  cde: {
    /** A workload, namespace or Compose service is in the CDE when it carries this label with this value. */
    label: string;
    value: string;
    /** Taint (and node label) key of the dedicated CDE node pool. */
    taintKey: string;
    /** Require CDE workloads to name a runtimeClassName (a sandboxed runtime such as gVisor or Kata). */
    requireRuntimeClass: boolean;
    /** If not empty, the runtime classes CDE workloads may use. */
    runtimeClasses: string[];
  };
  /** Labels every workload must carry (PCI container guidance 14.1). */
  requiredLabels: string[];
  failOn: Severity;
}

export const defaultScanConfig: ScanConfig = {
  allowedRegistries: [],
  cde: {
    label: 'cardhold.dev/cde',
    value: 'true',
    taintKey: 'cardhold.dev/cde',
    requireRuntimeClass: true,
    runtimeClasses: [],
  },
  requiredLabels: ['app.kubernetes.io/name'],
  failOn: 'high',
};

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    allowedRegistries: { type: 'array', items: { type: 'string', minLength: 1 } },
    cde: {
      type: 'object',
      additionalProperties: false,
      properties: {
        label: { type: 'string', minLength: 1 },
        value: { type: 'string' },
        taintKey: { type: 'string', minLength: 1 },
        requireRuntimeClass: { type: 'boolean' },
        runtimeClasses: { type: 'array', items: { type: 'string' } },
      },
    },
    requiredLabels: { type: 'array', items: { type: 'string', minLength: 1 } },
    failOn: { type: 'string' },
  },
} as const;

const validator = lazyValidator(schema, { allErrors: true });

export function scanConfigFrom(value: unknown, origin: string): ScanConfig {
  const validate = validator();
  if (!validate(value)) {
    const error = validate.errors?.[0];
    throw new InputError(`${origin}: ${error?.instancePath || '/'} ${error?.message ?? 'is not valid'}`);
  }
  const given = value as Partial<ScanConfig> & { cde?: Partial<ScanConfig['cde']> };
  if (given.failOn !== undefined && !isSeverity(given.failOn)) {
    throw new InputError(`${origin}: /failOn must be one of info, low, medium, high, critical`);
  }
  return {
    ...defaultScanConfig,
    ...given,
    cde: { ...defaultScanConfig.cde, ...given.cde },
  } as ScanConfig;
}

export async function loadScanConfig(file: string): Promise<ScanConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new InputError(`${file}: cannot read the scanner configuration`);
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch {
    throw new InputError(`${file}: the scanner configuration is not valid YAML or JSON`);
  }
  return scanConfigFrom(value ?? {}, file);
}
