/* fuzz_config.c - the trigger-file loader (td_config_load on a file): libyaml, the tree,
 * every key table, interpolation, durations and sizes, filters (cesql included) and the
 * reference checks. The input is written to a private temporary file that is loaded.
 * ${file:PATH} is confined to FUZZ_FILES_DIR (fuzz_common.h); ${FUZZ_VAR} and ${FUZZ_EMPTY}
 * are set.
 */
#include <fcntl.h>

#include "config.h"
#include "fuzz_common.h"

static char path[64];

static void remove_file(void)
{
    if (path[0]) {
        unlink(path);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int fd;

    (void)argc;
    (void)argv;
    fuzz_make_files();
    setenv("FUZZ_VAR", "redis://127.0.0.1:6379", 1);
    setenv("FUZZ_EMPTY", "", 1);
    snprintf(path, sizeof(path), "/tmp/td-fuzz-config-XXXXXX.yaml");
    fd = mkstemps(path, 5);
    if (fd < 0) {
        perror("mkstemps");
        abort();
    }
    close(fd);
    atexit(remove_file);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct td_errors errs = {0};
    struct td_config *cfg;
    FILE *fp;

    if (!path[0]) {
        LLVMFuzzerInitialize(NULL, NULL);
    }
    if (!fuzz_files_confined(data, size)) {
        return 0;
    }
    fp = fopen(path, "wb");
    if (!fp) {
        abort();
    }
    if (size && fwrite(data, 1, size, fp) != size) {
        abort();
    }
    fclose(fp);

    cfg = td_config_load(path, &errs);
    if (cfg) {
        FUZZ_CHECK(errs.n == 0, "a loaded config came with %zu errors", errs.n);
        for (size_t i = 0; i < cfg->ntriggers; i++) {
            const struct td_conf_trigger *trg = &cfg->triggers[i];
            FUZZ_CHECK(td_config_source(cfg, trg->source) != NULL, "trigger %s: dangling source",
                       trg->name);
            FUZZ_CHECK(td_config_sink(cfg, trg->sink) != NULL, "trigger %s: dangling sink",
                       trg->name);
        }
    } else {
        FUZZ_CHECK(errs.n > 0, "td_config_load failed without a message");
    }
    td_config_free(cfg);
    td_errors_clear(&errs);
    return 0;
}
