import { Type } from 'typebox';
import { adminAccess } from '../auth/authenticate.ts';
import type { AppInstance } from '../http/create-server.ts';
import type { Unsealer } from './unsealer.ts';

const SealStatusSchema = Type.Object({
  sealed: Type.Boolean(),
  threshold: Type.Integer(),
  shares: Type.Integer(),
  submitted: Type.Integer(),
  seal_id: Type.String(),
  environment: Type.Union([Type.Literal('development'), Type.Literal('production')]),
});

/**
 * The vault's seal controls for custodians: each needs `keys:admin`, which for people means an operator
 * session with MFA (PCI DSS 8.4.2). They answer while sealed; every other non-public route does not.
 */
export function registerSealRoutes(app: AppInstance, unsealer: Unsealer): void {
  const security = [{ bearer: [] }];
  app.get(
    '/v1/keys/seal-status',
    {
      config: { access: 'keys:admin' },
      schema: {
        summary: 'Whether the key provider is sealed, and how many shares are held towards the threshold',
        tags: ['keys'],
        security,
        response: { 200: SealStatusSchema },
      },
    },
    async () => unsealer.status(),
  );
  app.post(
    '/v1/keys/unseal',
    {
      config: { access: 'keys:admin' },
      schema: {
        summary: "Submit one custodian's unseal share",
        description:
          'One share per custodian per attempt. The threshold-th distinct share unseals; a wrong set discards every share held (`key_shares_mismatch`). Audited with the share index, never the share.',
        tags: ['keys'],
        security,
        body: Type.Object(
          { share: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 200: SealStatusSchema },
      },
    },
    async (request) => unsealer.submit(adminAccess(request), request.body.share),
  );
  app.post(
    '/v1/keys/seal',
    {
      config: { access: 'keys:admin' },
      schema: {
        summary: 'Seal the key provider now (emergency): card data stops until custodians unseal again',
        tags: ['keys'],
        security,
        response: { 200: SealStatusSchema },
      },
    },
    async (request) => unsealer.seal(adminAccess(request)),
  );
}
