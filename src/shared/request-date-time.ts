import { CardholdError } from './errors.ts';

/**
 * A date-time from a request as a Date that PostgreSQL can store. The schemas' `date-time` format lets
 * through instants the calendar does not have for a Date (a leap second, 23:59:60) and years PostgreSQL
 * refuses (0000): those are the caller's mistake, a 400 naming the field, not a 500 from the database.
 */
export function requestDateTime(value: string, field: string): Date {
  const at = new Date(value);
  const year = at.getUTCFullYear();
  if (Number.isNaN(at.getTime()) || year < 1 || year > 9999) {
    throw new CardholdError('request_invalid', {
      field,
      detail: 'This must be a date-time between the years 0001 and 9999',
    });
  }
  return at;
}
