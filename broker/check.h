/* check.h - `triggerd check`: validate trigger files and describe each trigger. */
#ifndef TD_CHECK_H
#define TD_CHECK_H

/* Prints errors (FILE:LINE:COLUMN: message) to stderr and returns 2, or prints one line per
 * trigger to stdout and returns 0. */
int td_check_run(const char *path);

#endif
