/* check.h - `triggerd check`: validate trigger files and describe each trigger. */
#ifndef TD_CHECK_H
#define TD_CHECK_H

/* Prints errors (FILE:LINE:COLUMN: message) to stderr and returns 2, or prints one line per
 * trigger to stdout and returns 0. */
int td_check_run(const char *path);

#include <stdint.h>

struct td_config;
struct td_conf_sink;
struct td_conf_trigger;
struct td_errors;
/* RabbitMQ's default consumer_timeout: a delivery held longer closes the channel. */
#define TD_RABBITMQ_CONSUMER_TIMEOUT_MS (30 * 60 * 1000)
/* check_rabbitmq.c: AMQP URLs, and every trigger on a RabbitMQ source whose worst-case hold
 * (td_check_worst_hold_ms) exceeds consumer_timeout is an error. Used by check and run. */
void td_check_rabbitmq(const struct td_config *cfg, struct td_errors *errs);
int64_t td_check_worst_hold_ms(const struct td_conf_trigger *trg, const struct td_conf_sink *sink);

#endif
