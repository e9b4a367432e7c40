import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYamlDocuments } from './yaml-source.ts';

describe('parseYamlDocuments', () => {
  it('applies merge keys as Compose and Kubernetes do', () => {
    const [document] = parseYamlDocuments(
      [
        'x-hardening: &hardening',
        '  read_only: true',
        '  cap_drop: [ALL]',
        'services:',
        '  vault:',
        '    <<: *hardening',
        '    image: registry.example.com/cardhold:1',
        '',
      ].join('\n'),
      'compose.yaml',
    );
    const services = (document!.value as { services: Record<string, Record<string, unknown>> }).services;
    assert.equal(services['vault']?.['read_only'], true);
    assert.deepEqual(services['vault']?.['cap_drop'], ['ALL']);
    assert.equal('<<' in (services['vault'] ?? {}), false);
  });

  it('lets the service override what it merged', () => {
    const [document] = parseYamlDocuments(
      'base: &base {read_only: true, restart: always}\nservices:\n  job: {<<: *base, restart: "no"}\n',
      'compose.yaml',
    );
    const job = (document!.value as { services: { job: Record<string, unknown> } }).services.job;
    assert.equal(job['restart'], 'no');
    assert.equal(job['read_only'], true);
  });
});
