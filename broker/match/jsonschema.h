/* jsonschema.h - payload validation for triggers (`schema: FILE`): a JSON Schema subset.
 *
 * Why our own: Debian 12 packages no maintained C JSON Schema validator (valijson is C++),
 * and triggers need only a well-defined core. Supported keywords (draft 2020-12 / 07
 * meaning): type (string or list; "integer" is a number without a fraction), enum, const,
 * properties, required, additionalProperties (boolean or schema), minProperties,
 * maxProperties, items (one schema for every element), minItems, maxItems, uniqueItems,
 * minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers), multipleOf, minLength,
 * maxLength (Unicode code points), pattern (POSIX extended regular expressions, unanchored
 * search: \d and other ECMA-262 escapes are not available), anyOf, allOf, oneOf, not, and
 * $ref to a JSON pointer inside the same file ("#", "#/$defs/name", "#/definitions/name").
 * Boolean schemas (true/false) work. Annotations ($schema, $id, title, description, default,
 * examples, format, ...) are ignored. Keywords that would assert something this subset does
 * not implement (patternProperties, if/then/else, prefixItems, contains, propertyNames,
 * dependentRequired, dependentSchemas, unevaluated*, $dynamicRef, remote $ref) make the
 * schema fail to load, so a trigger never believes it is checked when it is not.
 *
 * Ownership: td_jsonschema_load/parse return a schema the caller frees with
 * td_jsonschema_free; it is read-only afterwards. Validation
 * depth (nested data, $ref recursion) is bounded: deeper is an error, never a crash.
 */
#ifndef TD_JSONSCHEMA_H
#define TD_JSONSCHEMA_H

#include <stddef.h>

struct td_jsonschema;

/* Parses a schema from JSON text; NULL with a message in err. Thread: one at a time (cJSON). */
struct td_jsonschema *td_jsonschema_parse(const char *text, size_t len, char *err, size_t errlen);
/* Reads path (relative paths are taken relative to the directory of relative_to, the trigger
 * file that names it, when relative_to is not NULL); NULL with a message in err. */
struct td_jsonschema *td_jsonschema_load(const char *path, const char *relative_to, char *err,
                                         size_t errlen);
void td_jsonschema_free(struct td_jsonschema *s); /* NULL is a no-op */

/* Validates the JSON text json (len bytes; NULL or len 0: JSON null). Returns 0 when valid;
 * -1 with the first error ("at /pointer: message", or "the data is not JSON") in err.
 * Thread: one at a time (cJSON's parser keeps its last error in a global): the loop. */
int td_jsonschema_validate(const struct td_jsonschema *s, const char *json, size_t len, char *err,
                           size_t errlen);

#endif
