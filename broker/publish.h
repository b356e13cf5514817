/* publish.h - `triggerd publish URL`: put one message on a queue, plain or as a CloudEvent in
 * binary mode, so users can feed and test their triggers with the same binary. */
#ifndef TD_PUBLISH_H
#define TD_PUBLISH_H

/* argv[0] is "publish". Returns the exit code (0 published, 1 failed, 2 usage). */
int td_publish_main(int argc, char **argv);

#endif
