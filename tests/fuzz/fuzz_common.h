/* fuzz_common.h - helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Every target defines LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize); it is
 * linked either with libFuzzer (-fsanitize=fuzzer, the TD_FUZZ build) or with replay.c, which
 * feeds it every file of a corpus directory (the regression test of the normal build).
 * FUZZ_CHECK turns a broken invariant (a round trip that does not hold) into an abort, which
 * both libFuzzer and the replay driver report as a crash.
 */
#ifndef TD_FUZZ_COMMON_H
#define TD_FUZZ_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input (bytes after an embedded NUL are simply not seen by C
 * string APIs, as in real use). Aborts on out of memory: that is the harness, not a finding. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) {
        abort();
    }
    if (size) {
        memcpy(s, data, size);
    }
    s[size] = '\0';
    return s;
}

/* The directory that ${file:PATH} may read in the targets that interpolate (interpolate,
 * config): a fuzzer must not open /dev/stdin, /dev/kmsg or a FIFO and hang. Created at start.
 */
#define FUZZ_FILES_DIR "/tmp/td-fuzz-files/"

static inline void fuzz_write_file(const char *name, const char *content, size_t len)
{
    char path[256];
    char tmp[300];
    FILE *fp;

    snprintf(path, sizeof(path), "%s%s", FUZZ_FILES_DIR, name);
    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
    fp = fopen(tmp, "wb");
    if (!fp) {
        return;
    }
    fwrite(content, 1, len, fp);
    fclose(fp);
    rename(tmp, path); /* atomic: replay tests may run in parallel */
}

/* Creates FUZZ_FILES_DIR with: secret (a line and its newline), empty, nul (a NUL byte), big
 * (just over 1 MiB). The seeds refer to these names. */
static inline void fuzz_make_files(void)
{
    static const size_t big_len = (1u << 20) + 16;
    char *big;

    if (mkdir(FUZZ_FILES_DIR, 0755) < 0 && errno != EEXIST) {
        return;
    }
    fuzz_write_file("secret", "s3cret\n", 7);
    fuzz_write_file("empty", "", 0);
    fuzz_write_file("nul", "a\0b", 3);
    big = malloc(big_len);
    if (big) {
        memset(big, 'x', big_len);
        fuzz_write_file("big", big, big_len);
        free(big);
    }
}

/* True when every "file:" in the input is followed by FUZZ_FILES_DIR and a path without "..":
 * the targets skip other inputs. */
static inline bool fuzz_files_confined(const uint8_t *data, size_t size)
{
    static const char dir[] = FUZZ_FILES_DIR;
    const size_t dlen = sizeof(dir) - 1;

    for (size_t i = 0; i + 5 <= size; i++) {
        if (memcmp(data + i, "file:", 5) != 0) {
            continue;
        }
        size_t p = i + 5;
        if (size - p < dlen || memcmp(data + p, dir, dlen) != 0) {
            return false;
        }
        for (size_t j = p + dlen; j < size && data[j] != '}'; j++) {
            if (data[j] == '.' && j + 1 < size && data[j + 1] == '.') {
                return false;
            }
        }
    }
    return true;
}

#endif
