/* fuzz_jsonschema.c - the payload validator (broker/match/jsonschema.c). Input: a schema, a
 * newline, then the instance (JSON data as a trigger's payload would carry). When the first part is
 * not a schema, the instance is still validated against fixed schemas that use every keyword family
 * (uniqueItems included: it was O(n^2) on untrusted data).
 *
 * Checks: parse and validate never crash or leak; a refused schema and an invalid instance come
 * with a message; validation is deterministic.
 */
#include "fuzz_common.h"
#include "jsonschema.h"

static const char *const fixed[] = {
    "{\"type\":\"array\",\"uniqueItems\":true,\"items\":{\"type\":[\"integer\",\"string\","
    "\"object\",\"array\",\"boolean\",\"null\"]},\"maxItems\":100000}",
    "{\"type\":\"object\",\"required\":[\"id\"],\"additionalProperties\":{\"$ref\":\"#/$defs/v\"},"
    "\"properties\":{\"id\":{\"type\":\"string\",\"pattern\":\"^[a-z]+[0-9]*$\",\"maxLength\":20}},"
    "\"$defs\":{\"v\":{\"anyOf\":[{\"type\":\"number\",\"multipleOf\":0.5,\"minimum\":-1e9},"
    "{\"oneOf\":[{\"const\":true},{\"enum\":[null,\"x\",[1,2]]}]},{\"not\":{\"type\":\"object\"}},"
    "{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/v\"},\"uniqueItems\":true}]}}}",
};

static void validate(const struct td_jsonschema *s, const char *inst, size_t len)
{
    char err[512] = "";
    char err2[512] = "";
    int rc = td_jsonschema_validate(s, inst, len, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    FUZZ_CHECK(rc == 0 || err[0] != '\0', "invalid without a message");
    int rc2 = td_jsonschema_validate(s, inst, len, err2, sizeof(err2));
    FUZZ_CHECK(rc == rc2 && strcmp(err, err2) == 0, "not deterministic: '%s' then '%s'", err, err2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t slen = nl ? (size_t)(nl - data) : size;
    const char *inst = nl ? (const char *)nl + 1 : "";
    size_t ilen = nl ? size - slen - 1 : 0;
    char err[512] = "";
    struct td_jsonschema *s = td_jsonschema_parse((const char *)data, slen, err, sizeof(err));

    if (s) {
        validate(s, inst, ilen);
        td_jsonschema_free(s);
    } else {
        FUZZ_CHECK(err[0] != '\0', "schema refused without a message");
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        s = td_jsonschema_parse(fixed[i], strlen(fixed[i]), err, sizeof(err));
        FUZZ_CHECK(s != NULL, "fixed schema %zu: %s", i, err);
        validate(s, inst, ilen);
        validate(s, (const char *)data, size);
        td_jsonschema_free(s);
    }
    return 0;
}
