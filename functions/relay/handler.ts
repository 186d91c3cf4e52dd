import { relayUndelivered } from '#prediction/relay';
import { eventHandler } from '#shared/handler';

/** Scheduled: re-sends stored predictions ThingsBoard does not have and whose message may be gone. */
export const handler = eventHandler(async () => relayUndelivered());
