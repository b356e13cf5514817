/* redrive.h - `triggerd redrive`: sends dead letters back through their trigger.
 *
 *   triggerd redrive -c PATH --from TARGET [--trigger NAME] [--reason R] [--limit N] [--dry-run]
 *                    [--queue Q]
 *
 * TARGET is a sink of PATH used as a dead-letter target: a Redis stream, a JSON-lines file, a
 * Kafka topic (read by the consumer group "triggerd-redrive", which commits past what is done)
 * or a RabbitMQ queue (Q, the queue bound to the sink's exchange and routing key). Each dead
 * letter read from it loses its dead-letter attributes and goes through its original trigger
 * (deadlettertrigger, or --trigger) with that trigger's sink and delivery policy; one that fails
 * again goes to the trigger's dead-letter target again, never nowhere. An entry leaves TARGET
 * only once it was delivered or dead-lettered anew. Threads: the calling thread runs a loop of
 * its own.
 */
#ifndef TD_REDRIVE_H
#define TD_REDRIVE_H

/* argv[0] is "redrive". Exit status: 0 (every selected entry redriven or dead-lettered anew),
 * 1 (some left in TARGET, or a runtime error), 2 (usage or configuration error). */
int td_redrive_main(int argc, char **argv);

#endif
