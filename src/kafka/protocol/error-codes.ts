/**
 * @module kafka/protocol/error-codes
 * The Kafka error codes tollgate itself answers with, and the broker's Produce errors its audit records name (a
 * captured record without an offset says why), and those tollgate's own producer and topic reader (src/kafka/client/)
 * act on. Numbers are Kafka's (org.apache.kafka.common.protocol.Errors); named
 * here so no code carries a bare number.
 */
export const KafkaError = {
  NONE: 0,
  UNKNOWN_SERVER_ERROR: -1,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
  NOT_LEADER_OR_FOLLOWER: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  NETWORK_EXCEPTION: 13,
  RECORD_LIST_TOO_LARGE: 18,
  NOT_ENOUGH_REPLICAS: 19,
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 20,
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  UNSUPPORTED_SASL_MECHANISM: 33,
  ILLEGAL_SASL_STATE: 34,
  INVALID_TIMESTAMP: 32,
  UNSUPPORTED_VERSION: 35,
  INVALID_REQUEST: 42,
  POLICY_VIOLATION: 44,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
  INVALID_PRODUCER_EPOCH: 47,
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: 53,
  SASL_AUTHENTICATION_FAILED: 58,
  INVALID_RECORD: 87,
  OPERATION_NOT_ATTEMPTED: 55,
  KAFKA_STORAGE_ERROR: 56,
  UNKNOWN_PRODUCER_ID: 59,
  FENCED_LEADER_EPOCH: 74,
  UNKNOWN_LEADER_EPOCH: 75,
  UNKNOWN_TOPIC_ID: 100,
} as const;

export type KafkaErrorName = keyof typeof KafkaError;
export type KafkaErrorCode = (typeof KafkaError)[KafkaErrorName];

const NAMES = new Map<number, string>(Object.entries(KafkaError).map(([name, code]) => [code, name]));

/** `TOPIC_AUTHORIZATION_FAILED (29)` for logs and audit records; unknown codes print as their number. */
export function kafkaErrorName(code: number): string {
  const name = NAMES.get(code);
  return name === undefined ? `error ${code}` : `${name} (${code})`;
}
