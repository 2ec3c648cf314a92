/**
 * @module kafka/approval
 * Just-in-time approval for Kafka requests, over the approval service. Kafka clients cannot be held (their request
 * timeouts are short and a connection's answers keep their order), so every approval is a ticket: the request is
 * answered at once with POLICY_VIOLATION and the approval's id in the error message where the response has one;
 * once approved, the grant lets the retry through. `prepare` is what the connection awaits between a request's
 * first decision (which found approval demands) and its second.
 */
import { scopeKey } from '../core/approval.ts';
import type { GrantUse } from '../core/decision.ts';
import type { ApprovalService } from '../approvals/service.ts';
import type { KafkaApprovals } from './connection.ts';

export function createKafkaApprovals(service: ApprovalService): KafkaApprovals {
  return {
    async prepare(principal, demands, context) {
      const view = await service.view(principal);
      /** One-time grants this request took: the only one-time grants it may go through with. */
      const taken = new Set<string>();
      for (const { decision } of demands) {
        const demand = decision.approval;
        if (demand === undefined) continue;
        const scope = scopeKey(demand.scope);
        let grant: GrantUse | undefined = view.grant(scope);
        while (grant !== undefined && grant.oneTime && !taken.has(grant.id)) {
          if (await service.use(grant)) {
            taken.add(grant.id);
            break;
          }
          view.drop(grant.id);
          grant = view.grant(scope);
        }
        if (grant !== undefined) continue;
        if (view.pending(scope, demand.rule) === undefined) view.addPending(await service.open(principal, demand, decision.reason, context));
      }
      return {
        grant: (scope) => {
          const grant = view.grant(scope);
          return grant === undefined || (grant.oneTime && !taken.has(grant.id)) ? undefined : grant;
        },
        pending: (scope, rule) => view.pending(scope, rule),
      };
    },
    watchRevocations(onRevoked) {
      return service.subscribe((event) => {
        if (event.type === 'revoked' && event.grant !== undefined) onRevoked(event.grant.id);
      });
    },
  };
}
