/* dl_reasons.h - why an event was dead-lettered: the values of its deadletterreason attribute.
 * Data only, so a source can name a reason (max_deliveries) without reaching into the core; the
 * README's "Dead-letter reasons" table and `redrive --reason` are checked against this list.
 */
#ifndef TD_DL_REASONS_H
#define TD_DL_REASONS_H

#define TD_DL_FINAL_STATUS      "final_status"
#define TD_DL_RETRIES_EXHAUSTED "retries_exhausted"
#define TD_DL_MAX_DELIVERIES    "max_deliveries"
#define TD_DL_INVALID_EVENT     "invalid_event"
#define TD_DL_SCHEMA            "schema"       /* the data failed the trigger's schema */
#define TD_DL_REPLY_FAILED      "reply_failed" /* the reply event is what was dead-lettered */

#endif
