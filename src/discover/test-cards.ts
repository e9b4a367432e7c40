/**
 * Well-known public test card numbers, published by card networks and payment processors for testing
 * (Stripe, Adyen, Braintree, PayPal, network documentation). Discovery reports them as `test` findings
 * rather than dropping them: a test number in a production log still shows where card data flows.
 * This is the one product module whose purpose is test cards; a test checks that it includes every
 * number of test/fixtures/cards.ts.
 */
const publicTestPans: readonly string[] = [
  // Visa
  '4242424242424242',
  '4000056655665556',
  '4111111111111111',
  '4012888888881881',
  '4222222222222',
  '4217651111111119',
  '4000000000000002',
  '4000000000000010',
  '4000000000000028',
  '4000000000000036',
  '4000000000000069',
  '4000000000000077',
  '4000000000000101',
  '4000000000000119',
  '4000000000000127',
  '4000000000000341',
  '4000000000009995',
  '4000002500003155',
  '4000002760003184',
  '4000000000003220',
  '4000000000003063',
  '4917610000000000',
  '4988438843884305',
  '4166676667666746',
  '4646464646464644',
  '4000020000000000',
  '4444333322221111',
  '4035501000000008',
  '4400000000000008',
  // cardhold's test acquirer (src/acquirers/test-cards.ts): Stripe's lost and stolen card numbers, and
  // three Luhn-valid numbers of cardhold's own for its timeout, 5xx and unknown-outcome triggers.
  '4000000000009987',
  '4000000000009979',
  '4000000000000135',
  '4000000000000143',
  '4000000000000150',
  // Mastercard
  '5555555555554444',
  '2223003122003222',
  '5200828282828210',
  '5105105105105100',
  '5431111111111111',
  '5454545454545454',
  '2222400070000005',
  '5555341244441115',
  '5577000055770004',
  '5101180000000007',
  '2223000048400011',
  // American Express
  '378282246310005',
  '371449635398431',
  '378734493671000',
  '370000000000002',
  '340000000000009',
  '374245455400126',
  // Discover
  '6011111111111117',
  '6011000990139424',
  '6011000400000000',
  '6011601160116611',
  '6445644564456445',
  // Diners Club
  '3056930009020004',
  '36227206271667',
  '30569309025904',
  '38520000023237',
  '36006666333344',
  '36148900647913',
  // JCB
  '3566002020360505',
  '3566111111111113',
  '3530111333300000',
  '3569990010095841',
  // UnionPay
  '6200000000000005',
  '6200000000000047',
  '6205500000000000004',
  '6243030000000001',
  // Maestro
  '500000000017',
  '6759649826438453',
  '6799990100000000019',
  '6304000000000000',
  '5000550000000029',
];

const testPanSet: ReadonlySet<string> = new Set(publicTestPans);

/** Whether `digits` is a published test card number. */
export function isPublicTestPan(digits: string): boolean {
  return testPanSet.has(digits);
}

/** For the test that checks the list; nothing else needs the numbers themselves. */
export function listPublicTestPans(): readonly string[] {
  return publicTestPans;
}
