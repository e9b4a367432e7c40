import { Type } from 'typebox';
import { deliveryIdPattern, endpointIdPattern, eventIdPattern, eventTypePattern } from './identifiers.ts';
import { MAX_ROTATION_OVERLAP_SECONDS } from './webhooks.ts';

const dateTime = Type.String({ format: 'date-time' });
const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const EnabledEvents = Type.Array(
  Type.Union([Type.Literal('*'), Type.String({ pattern: eventTypePattern, maxLength: 100 })]),
  { minItems: 1, maxItems: 100, uniqueItems: true, description: "Event types to send; '*' is every type" },
);

export const CreateEndpointBody = Type.Object(
  {
    url: Type.String({
      minLength: 10,
      maxLength: 2048,
      description: 'https (http to loopback only in development mode)',
    }),
    enabled_events: EnabledEvents,
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

export const RotateSecretBody = Type.Object(
  {
    expires_in_seconds: Type.Integer({
      minimum: 0,
      maximum: MAX_ROTATION_OVERLAP_SECONDS,
      default: 86_400,
      description: 'How long the previous secret keeps signing beside the new one (0 ends it now)',
    }),
  },
  { additionalProperties: false },
);

const endpointFields = {
  id: Type.String(),
  object: Type.Literal('webhook_endpoint'),
  url: Type.String(),
  enabled_events: Type.Array(Type.String()),
  description: nullable(Type.String()),
  created_at: dateTime,
  previous_secret_expires_at: nullable(dateTime),
};

export const Endpoint = Type.Object(endpointFields);

export const EndpointWithSecret = Type.Object({
  ...endpointFields,
  secret: Type.String({
    description: 'whsec_…: shown only in this response; verify Cardhold-Signature with it',
  }),
});

export const DeletedEndpoint = Type.Object({
  id: Type.String(),
  object: Type.Literal('webhook_endpoint'),
  deleted: Type.Literal(true),
});

export const Event = Type.Object({
  id: Type.String(),
  object: Type.Literal('event'),
  type: Type.String(),
  created: Type.Integer({ description: 'Unix seconds' }),
  livemode: Type.Boolean(),
  data: Type.Object({ object: Type.Record(Type.String(), Type.Unknown()) }),
});

const Attempt = Type.Object({
  attempt: Type.Integer(),
  started_at: dateTime,
  duration_ms: Type.Integer(),
  status_code: nullable(Type.Integer()),
  error: nullable(Type.String({ description: 'A short code such as http_500 or timeout; never a body' })),
  outcome: Type.Union([Type.Literal('succeeded'), Type.Literal('failed')]),
});

const DeliveryStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('abandoned'),
]);

export const Delivery = Type.Object({
  id: Type.String(),
  object: Type.Literal('webhook_delivery'),
  event_id: Type.String(),
  event_type: Type.String(),
  endpoint_id: Type.String(),
  status: DeliveryStatus,
  attempts: Type.Integer(),
  next_attempt_at: nullable(dateTime),
  last_attempt_at: nullable(dateTime),
  last_status_code: nullable(Type.Integer()),
  last_error: nullable(Type.String()),
  created_at: dateTime,
  attempt_log: Type.Array(Attempt),
});

const list = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ object: Type.Literal('list'), data: Type.Array(item), has_more: Type.Boolean() });

export const EndpointList = list(Endpoint);
export const EventList = list(Event);
export const DeliveryList = list(Delivery);

const limit = Type.Integer({ minimum: 1, maximum: 100, default: 10 });

export const EndpointListQuery = Type.Object(
  { limit, starting_after: Type.Optional(Type.String({ pattern: endpointIdPattern })) },
  { additionalProperties: false },
);
export const EventListQuery = Type.Object(
  {
    limit,
    starting_after: Type.Optional(Type.String({ pattern: eventIdPattern })),
    type: Type.Optional(Type.String({ pattern: eventTypePattern, maxLength: 100 })),
  },
  { additionalProperties: false },
);
export const DeliveryListQuery = Type.Object(
  {
    limit,
    starting_after: Type.Optional(Type.String({ pattern: deliveryIdPattern })),
    status: Type.Optional(DeliveryStatus),
  },
  { additionalProperties: false },
);

export const EndpointParams = Type.Object({ id: Type.String({ pattern: endpointIdPattern }) });
export const EventParams = Type.Object({ id: Type.String({ pattern: eventIdPattern }) });
export const DeliveryParams = Type.Object({ id: Type.String({ pattern: deliveryIdPattern }) });
