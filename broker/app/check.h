/* check.h - `triggerd check`: validate trigger files and describe each trigger. */
#ifndef TD_CHECK_H
#define TD_CHECK_H

/* Prints errors (FILE:LINE:COLUMN: message) to stderr and returns 2, or prints one line per
 * trigger to stdout and returns 0. */
int td_check_run(const char *path);

#include <stdint.h>

struct td_config;
struct td_conf_sink;
struct td_conf_source;
struct td_conf_trigger;
struct td_errors;
/* check_rabbitmq.c: AMQP URLs with their tls: block and auth_mechanism, TLS files that are not
 * PEM of their kind; ordering: partition|key on a RabbitMQ source (a queue has
 * neither); and every trigger on a RabbitMQ source whose worst-case hold
 * (td_check_worst_hold_ms) exceeds the source's consumer_timeout is an error. Used by check
 * and run. */
void td_check_rabbitmq(const struct td_config *cfg, struct td_errors *errs);
/* Warnings ("warning: ..." messages with a position, for check to print and run to log): a
 * trigger whose worst case, counting the wait behind `concurrency` in the prefetch window
 * (td_check_queued_hold_ms), exceeds consumer_timeout although one delivery alone does not; a
 * RabbitMQ TLS file that cannot be read here; tls.insecure_skip_verify. */
void td_check_rabbitmq_warnings(const struct td_config *cfg, struct td_errors *warns);
int64_t td_check_worst_hold_ms(const struct td_conf_trigger *trg, const struct td_conf_sink *sink);
/* The worst case of a delivery that waits behind the rest of the prefetch window:
 * ceil(window / concurrency) × td_check_worst_hold_ms, plus the requeue delay of a release. */
int64_t td_check_queued_hold_ms(const struct td_conf_source *src, const struct td_conf_trigger *trg,
                                const struct td_conf_sink *sink);

#endif
