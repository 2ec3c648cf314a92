/**
 * @module kafka/sequencer
 * Keeps a Kafka connection's responses in the client's request order when some come from the broker and some from
 * tollgate itself (a denial, a SASL answer), and when tollgate slips requests of its own into the upstream stream
 * (its own authentication to the broker).
 *
 * Two queues make that work, both relying on Kafka answering requests strictly in order on one connection:
 * - the client queue: one slot per client request that expects a response, in the order the client sent them;
 *   a slot is filled by a local answer (at once, or later when an asynchronous check completes), or by the broker;
 * - the upstream queue: what was sent to the broker and awaits its response, client requests and tollgate's own,
 *   in send order; each broker response belongs to its head.
 * Only a filled slot at the head of the client queue is released, so a local answer never overtakes an earlier
 * request's broker response.
 *
 * Pure state: no I/O, no gRPC. The caller turns released frames into `write_data` replies.
 */

export interface PendingRequest {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
}

/**
 * Turns the broker's response into the client's (filtering, merging denied parts, rewriting broker addresses).
 * May throw: the error propagates out of `fromBroker` and the caller closes the connection.
 */
export type ResponseTransform = (frame: Buffer) => Buffer;

interface ClientSlot extends PendingRequest {
  response?: Buffer;
  readonly transform: ResponseTransform | undefined;
}

type UpstreamEntry =
  | { readonly kind: 'client'; readonly slot: ClientSlot }
  | { readonly kind: 'internal'; readonly correlationId: number; readonly onResponse: (frame: Buffer) => void };

export class SequenceError extends Error {
  readonly code: 'unexpected_response' | 'correlation_mismatch';
  constructor(code: SequenceError['code'], message: string) {
    super(message);
    this.name = 'SequenceError';
    this.code = code;
  }
}

export class ResponseSequencer {
  readonly #client: ClientSlot[] = [];
  readonly #upstream: UpstreamEntry[] = [];

  /** Client requests awaiting their response (local or upstream). */
  get pendingClient(): number {
    return this.#client.length;
  }

  /** Requests sent upstream (the client's and tollgate's own) awaiting the broker. */
  get pendingUpstream(): number {
    return this.#upstream.length;
  }

  /** A client request forwarded to the broker that expects a response; `transform` shapes the broker's answer. */
  forwarded(request: PendingRequest, transform?: ResponseTransform): void {
    const slot: ClientSlot = { ...request, transform };
    this.#client.push(slot);
    this.#upstream.push({ kind: 'client', slot });
  }

  /** A client request tollgate answers itself; returns the frames now releasable, in client order. */
  answered(request: PendingRequest, response: Buffer): Buffer[] {
    this.#client.push({ ...request, response, transform: undefined });
    return this.#release();
  }

  /**
   * A client request tollgate answers itself later (an asynchronous check). Holds its place in the client order;
   * the returned function fills it and returns the frames then releasable. Filling twice throws.
   */
  reserved(request: PendingRequest): (response: Buffer) => Buffer[] {
    const slot: ClientSlot = { ...request, transform: undefined };
    this.#client.push(slot);
    return (response) => {
      if (slot.response !== undefined) throw new Error(`the answer to correlation id ${slot.correlationId} was already given`);
      slot.response = response;
      return this.#release();
    };
  }

  /** A request of tollgate's own sent upstream; the broker's response goes to `onResponse`, never to the client. */
  injected(correlationId: number, onResponse: (frame: Buffer) => void): void {
    this.#upstream.push({ kind: 'internal', correlationId, onResponse });
  }

  /**
   * A whole response frame from the broker (size prefix included). Returns the frames now releasable to the client.
   * Throws SequenceError when nothing awaits a response or the correlation id is not the oldest request's, and
   * whatever the slot's transform or an internal `onResponse` throws.
   */
  fromBroker(frame: Buffer): Buffer[] {
    const head = this.#upstream[0];
    const correlationId = frame.readInt32BE(4);
    if (head === undefined) {
      throw new SequenceError('unexpected_response', `broker sent a response (correlation id ${correlationId}) while no request awaited one`);
    }
    const expected = head.kind === 'client' ? head.slot.correlationId : head.correlationId;
    if (correlationId !== expected) {
      throw new SequenceError('correlation_mismatch', `expected the response to correlation id ${expected}, got ${correlationId}`);
    }
    this.#upstream.shift();
    if (head.kind === 'internal') {
      head.onResponse(frame);
      return this.#release();
    }
    head.slot.response = head.slot.transform === undefined ? frame : head.slot.transform(frame);
    return this.#release();
  }

  /** The request the next broker response must answer, if any (for logs and pairing). */
  peekUpstream(): PendingRequest | { readonly correlationId: number; readonly internal: true } | undefined {
    const head = this.#upstream[0];
    if (head === undefined) return undefined;
    return head.kind === 'client' ? head.slot : { correlationId: head.correlationId, internal: true };
  }

  #release(): Buffer[] {
    const out: Buffer[] = [];
    while (this.#client.length > 0 && this.#client[0]!.response !== undefined) {
      out.push(this.#client.shift()!.response!);
    }
    return out;
  }
}
