/**
 * @module bench/lib/payments
 * The masking benches' records: JSON payment documents of an exact byte size, each with a card number and an email
 * (what the bench's masking rule masks) and a padding of plain words (which the rule's detectors still scan), made
 * from a seeded generator so every run masks the same bytes. ASCII only: characters and bytes count the same.
 */

/** The bench's masking rule (`mask:` of a tollgate rule): the card number kept to its last 4, emails and card numbers anywhere. */
export const MASK_SPEC = { fields: { '$.card.number': 'keep-last-4' }, detectors: ['email', 'card'] } as const;

/** Luhn-valid test card numbers (the card detector checks Luhn). */
export const CARDS: readonly string[] = ['4111111111111111', '5500000000000004', '4012888888881881', '5105105105105100'];

/** The domain of every email in the records: none of it may reach a masked consumer. */
export const EMAIL_DOMAIN = 'example.com';

const WORDS = ['order', 'shipped', 'invoice', 'pending', 'refund', 'basket', 'parcel', 'express', 'standard', 'receipt',
  'customer', 'warehouse', 'delivery', 'returned', 'voucher', 'discount', 'priority', 'tracking', 'account', 'settled'];

/** mulberry32: a small seeded PRNG, enough for filler text. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Payment document `i` as JSON of exactly `size` bytes (at least ~260; smaller sizes throw):
 * `{"id":…,"ts":…,"card":{"number":…,"expiry":…},"customer":{"name":…,"email":…},"amount":…,"currency":…,"note":…,"pad":…}`.
 */
export function paymentJson(i: number, size: number): string {
  const random = prng(i + 1);
  const doc = {
    id: i,
    ts: new Date(Date.UTC(2026, 0, 1) + i * 1_000).toISOString(),
    card: { number: CARDS[i % CARDS.length]!, expiry: `${String(1 + (i % 12)).padStart(2, '0')}/29` },
    customer: { name: `Customer ${i}`, email: `customer.${i}@${EMAIL_DOMAIN}` },
    amount: Math.round(random() * 100_000) / 100,
    currency: 'EUR',
    note: 'paid online, receipt sent',
    pad: '',
  };
  const bare = JSON.stringify(doc).length;
  if (bare > size) throw new Error(`paymentJson: ${size} bytes is less than the ${bare} bytes of a document without padding`);
  let pad = '';
  while (pad.length < size - bare) pad += `${WORDS[Math.floor(random() * WORDS.length)]!} `;
  doc.pad = pad.slice(0, size - bare);
  const json = JSON.stringify(doc);
  if (json.length !== size) throw new Error(`paymentJson: ${json.length} bytes instead of ${size}`);
  return json;
}

/** What a masked consumer must see: the card number masked to its last 4 and no raw card number or email anywhere. */
export function checkMasked(value: string): string | undefined {
  let doc: { card?: { number?: unknown } };
  try {
    doc = JSON.parse(value) as typeof doc;
  } catch {
    return `not JSON: ${value.slice(0, 80)}`;
  }
  if (typeof doc.card?.number !== 'string' || !/^\*{12}\d{4}$/.test(doc.card.number)) return `card.number is ${JSON.stringify(doc.card?.number)}, not masked to its last 4`;
  const card = CARDS.find((c) => value.includes(c));
  if (card !== undefined) return `the raw card number ${card} is still there`;
  if (value.includes(`@${EMAIL_DOMAIN}`)) return 'an email is still there';
  return undefined;
}
