/* fuzz_interpolate.c - td_interpolate (${VAR}, ${VAR:-default}, ${file:PATH}, $${) on any
 * string. FUZZ_VAR, FUZZ_EMPTY and FUZZ_LONG are set; ${file:PATH} is confined to
 * FUZZ_FILES_DIR (fuzz_common.h). A string without "${" comes back unchanged and not secret.
 */
#include "config.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char long_value[5000];

    (void)argc;
    (void)argv;
    fuzz_make_files();
    memset(long_value, 'L', sizeof(long_value) - 1);
    setenv("FUZZ_VAR", "value", 1);
    setenv("FUZZ_EMPTY", "", 1);
    setenv("FUZZ_LONG", long_value, 1);
    setenv("FUZZ_DOLLAR", "${FUZZ_VAR}", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool initialized;
    char *s;
    char *out;
    char err[256] = "";
    bool secret = false;

    if (!initialized) {
        LLVMFuzzerInitialize(NULL, NULL);
        initialized = true;
    }
    if (!fuzz_files_confined(data, size)) {
        return 0;
    }
    s = fuzz_strndup(data, size);
    out = td_interpolate(s, &secret, err, sizeof(err));
    if (out) {
        if (!strstr(s, "${")) {
            FUZZ_CHECK(strcmp(out, s) == 0, "'%s' became '%s'", s, out);
            FUZZ_CHECK(!secret, "'%s' marked secret", s);
        }
    } else {
        FUZZ_CHECK(err[0] != '\0', "failed without a message");
    }
    free(out);
    free(s);
    return 0;
}
