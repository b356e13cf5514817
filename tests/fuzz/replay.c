/* replay.c - runs a libFuzzer target without libFuzzer: feeds it every file named on the
 * command line, or every regular file of every directory named (the corpus), one call each.
 *
 * Why: the normal (gcc) and ASan builds register each target as the CTest test
 * unit/fuzz_replay_<target>, so every crash once found and added to the corpus stays fixed.
 * A crash aborts the process (non-zero exit); a clean run prints how many inputs ran.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0;
    size_t cap = 0;
    size_t got;
    uint8_t chunk[4096];

    if (!fp) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return -1;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (len + got > cap) {
            cap = (len + got) * 2;
            uint8_t *p = realloc(buf, cap);
            if (!p) {
                fclose(fp);
                free(buf);
                return -1;
            }
            buf = p;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(fp);
    /* An exact-size copy, so that ASan sees a read past the input's end. */
    uint8_t *input = malloc(len ? len : 1);
    if (!input) {
        free(buf);
        return -1;
    }
    if (len) {
        memcpy(input, buf, len);
    }
    free(buf);
    LLVMFuzzerTestOneInput(input, len);
    free(input);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(const char *path, int *count)
{
    struct stat st;
    struct dirent **entries = NULL;
    int n;
    int rc = 0;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: cannot stat %s\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    n = scandir(path, &entries, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char full[4096];
        if (entries[i]->d_name[0] != '.') {
            snprintf(full, sizeof(full), "%s/%s", path, entries[i]->d_name);
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
                (*count)++;
                if (run_file(full) < 0) {
                    rc = -1;
                }
            }
        }
        free(entries[i]);
    }
    free(entries);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0;
    int rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    for (int i = 1; i < argc; i++) {
        if (run_path(argv[i], &count) < 0) {
            rc = 1;
        }
    }
    if (count == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replay: %d inputs ran without a crash\n", count);
    return rc;
}
