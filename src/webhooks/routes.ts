import { accessOf } from '../auth/authenticate.ts';
import type { AppInstance } from '../http/create-server.ts';
import {
  CreateEndpointBody,
  DeletedEndpoint,
  Delivery,
  DeliveryList,
  DeliveryListQuery,
  DeliveryParams,
  Endpoint,
  EndpointList,
  EndpointListQuery,
  EndpointParams,
  EndpointWithSecret,
  Event,
  EventList,
  EventListQuery,
  EventParams,
  RotateSecretBody,
} from './schemas.ts';
import type { DeliveryView, EndpointView, Webhooks } from './webhooks.ts';

const security = [{ apiKey: [] }];
const tags = ['webhooks'];
const access = { access: 'webhooks:manage' as const };

const endpoint = (view: EndpointView) => ({ ...view, object: 'webhook_endpoint' as const });
const delivery = (view: DeliveryView) => ({ ...view, object: 'webhook_delivery' as const });

/**
 * Webhook endpoints, events and the delivery log on the api role, for the merchant the credential acts
 * for (webhooks:manage). A signing secret appears only in the answers that create it.
 */
export function registerWebhookRoutes(app: AppInstance, deps: { webhooks: Webhooks }): void {
  const { webhooks } = deps;

  app.post(
    '/v1/webhook_endpoints',
    {
      config: access,
      schema: {
        summary: 'Create a webhook endpoint; its signing secret is shown once',
        tags,
        security,
        body: CreateEndpointBody,
        response: { 201: EndpointWithSecret },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const created = await webhooks.createEndpoint(accessOf(request), {
        url: body.url,
        enabledEvents: body.enabled_events,
        description: body.description,
      });
      return reply.code(201).send({ ...endpoint(created.endpoint), secret: created.secret.expose() });
    },
  );

  app.get(
    '/v1/webhook_endpoints',
    {
      config: access,
      schema: {
        summary: 'List webhook endpoints, newest first',
        tags,
        security,
        querystring: EndpointListQuery,
        response: { 200: EndpointList },
      },
    },
    async (request) => {
      const page = await webhooks.listEndpoints(accessOf(request), {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
      });
      return { object: 'list' as const, data: page.data.map(endpoint), has_more: page.has_more };
    },
  );

  app.get(
    '/v1/webhook_endpoints/:id',
    {
      config: access,
      schema: {
        summary: 'Read a webhook endpoint',
        tags,
        security,
        params: EndpointParams,
        response: { 200: Endpoint },
      },
    },
    async (request) => endpoint(await webhooks.getEndpoint(accessOf(request), request.params.id)),
  );

  app.delete(
    '/v1/webhook_endpoints/:id',
    {
      config: access,
      schema: {
        summary: 'Delete a webhook endpoint',
        description: 'Nothing more is sent to it; outstanding deliveries are abandoned; the log is kept.',
        tags,
        security,
        params: EndpointParams,
        response: { 200: DeletedEndpoint },
      },
    },
    async (request) => {
      await webhooks.deleteEndpoint(accessOf(request), request.params.id);
      return { id: request.params.id, object: 'webhook_endpoint' as const, deleted: true as const };
    },
  );

  app.post(
    '/v1/webhook_endpoints/:id/rotate_secret',
    {
      config: access,
      schema: {
        summary: 'Rotate the signing secret; the old one keeps signing for an overlap',
        description:
          'During the overlap (expires_in_seconds, default 86400, at most 7 days) every delivery carries a v1 signature for each secret.',
        tags,
        security,
        params: EndpointParams,
        body: RotateSecretBody,
        response: { 201: EndpointWithSecret },
      },
    },
    async (request, reply) => {
      const rotated = await webhooks.rotateSecret(
        accessOf(request),
        request.params.id,
        request.body.expires_in_seconds,
      );
      return reply.code(201).send({ ...endpoint(rotated.endpoint), secret: rotated.secret.expose() });
    },
  );

  app.get(
    '/v1/webhook_endpoints/:id/deliveries',
    {
      config: access,
      schema: {
        summary: "An endpoint's delivery log, newest first, with every attempt",
        tags,
        security,
        params: EndpointParams,
        querystring: DeliveryListQuery,
        response: { 200: DeliveryList },
      },
    },
    async (request) => {
      const page = await webhooks.listDeliveries(accessOf(request), request.params.id, {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
        status: request.query.status,
      });
      return { object: 'list' as const, data: page.data.map(delivery), has_more: page.has_more };
    },
  );

  app.post(
    '/v1/webhook_deliveries/:id/retry',
    {
      config: access,
      schema: {
        summary: 'Send a delivery again now',
        description: 'Past the 24-hour retry horizon this is a single attempt.',
        tags,
        security,
        params: DeliveryParams,
        response: { 202: Delivery },
      },
    },
    async (request, reply) =>
      reply.code(202).send(delivery(await webhooks.retryDelivery(accessOf(request), request.params.id))),
  );

  app.get(
    '/v1/events',
    {
      config: access,
      schema: {
        summary: 'List events, newest first',
        tags,
        security,
        querystring: EventListQuery,
        response: { 200: EventList },
      },
    },
    async (request) => {
      const page = await webhooks.listEvents(accessOf(request), {
        limit: request.query.limit,
        startingAfter: request.query.starting_after,
        type: request.query.type,
      });
      return { object: 'list' as const, ...page };
    },
  );

  app.get(
    '/v1/events/:id',
    {
      config: access,
      schema: { summary: 'Read an event', tags, security, params: EventParams, response: { 200: Event } },
    },
    async (request) => webhooks.getEvent(accessOf(request), request.params.id),
  );
}
