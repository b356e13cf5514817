/* file_sink.h - the file sink's settings (td_conf_sink.settings of a file sink; its key table
 * is in file.c), read by file.c and `redrive` (the file is a store). */
#ifndef TD_FILE_SINK_H
#define TD_FILE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct td_conf_file_sink {
    char *path;
};

#endif
