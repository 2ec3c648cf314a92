/**
 * @module kafka/authorize/transactions
 * Transaction coordinator APIs: produce on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED when
 * denied), plus produce per topic added to a transaction and consume on a group whose offsets join it.
 */
import { KafkaError } from '../protocol/error-codes.ts';
import { AddOffsetsToTxnResponseSchema, AddPartitionsToTxnResponseSchema, EndTxnResponseSchema, InitProducerIdResponseSchema } from '../protocol/generated/index.ts';
import type { AddPartitionsToTxnResponse } from '../protocol/generated/index.ts';
import { apiPolicy, blank, deniedEntry, planWhole } from './plan.ts';
import type { ApiPolicy } from './plan.ts';


const initProducerId = apiPolicy(22, 'produce on the transactional id; none for an idempotent producer (no transactional id)', (judge, body) => {
  // Idempotence alone gives a producer id and no access to any data: nothing to decide.
  if (body.transactionalId === null) return judge.forward();
  return planWhole(judge, judge.check('produce', { transactionalId: body.transactionalId }), (denial) =>
    deniedEntry(InitProducerIdResponseSchema, '', judge.version, denial, { producerId: -1n, producerEpoch: -1 }),
  );
});

const addPartitionsToTxn = apiPolicy(24, 'produce on the transactional id and per topic (v0-3, whole request); v4+ (broker-to-broker) refused', (judge, body) => {
  if (judge.version >= 4) return judge.refuse(`AddPartitionsToTxn v${judge.version} is the batched broker-to-broker form, not accepted from clients`);
  const txn = judge.check('produce', { transactionalId: body.v3AndBelowTransactionalId });
  const verdicts = txn !== undefined ? [] : body.v3AndBelowTopics.map((topic) => judge.check('produce', { topic: topic.name }));
  if (txn === undefined && verdicts.every((verdict) => verdict === undefined)) return judge.forward();
  // Not split: the broker adds a request's partitions atomically and answers a failure for all of them (denied
  // partitions TOPIC_AUTHORIZATION_FAILED, the others KafkaError.OPERATION_NOT_ATTEMPTED). Forwarding the allowed part would
  // add partitions to a transaction the producer is about to abort.
  const v = judge.version;
  type TopicResult = AddPartitionsToTxnResponse['resultsByTopicV3AndBelow'][number];
  const results = body.v3AndBelowTopics.map((topic, i): TopicResult => {
    const denial = txn ?? verdicts[i];
    return {
      ...blank<TopicResult>(AddPartitionsToTxnResponseSchema, 'resultsByTopicV3AndBelow'),
      name: topic.name,
      resultsByPartition: topic.partitions.map((partitionIndex) => ({ partitionIndex, partitionErrorCode: denial?.code ?? KafkaError.OPERATION_NOT_ATTEMPTED })),
    };
  });
  return judge.answer({ ...blank<AddPartitionsToTxnResponse>(AddPartitionsToTxnResponseSchema), resultsByTopicV3AndBelow: results });
});

const addOffsetsToTxn = apiPolicy(25, 'produce on the transactional id, consume on the group', (judge, body) =>
  planWhole(judge, judge.check('produce', { transactionalId: body.transactionalId }) ?? judge.check('consume', { group: body.groupId }), (denial) =>
    deniedEntry(AddOffsetsToTxnResponseSchema, '', judge.version, denial, {}),
  ),
);

const endTxn = apiPolicy(26, 'produce on the transactional id', (judge, body) =>
  planWhole(judge, judge.check('produce', { transactionalId: body.transactionalId }), (denial) => deniedEntry(EndTxnResponseSchema, '', judge.version, denial, {})),
);

export const TRANSACTION_APIS: readonly ApiPolicy[] = [initProducerId, addPartitionsToTxn, addOffsetsToTxn, endTxn];
