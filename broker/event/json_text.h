/* json_text.h - JSON as text (json_text.c): whether bytes are strict JSON, and where a member's
 * or an element's value lies in a document, so that the CloudEvents JSON format can carry JSON
 * data as the producer wrote it instead of re-printing it through a cJSON tree (which turns
 * 12345678901234567890 into 1.2345678901234567e+19 and 0.1000000000000000055511151231257827
 * into 0.1).
 *
 * Why a strict check next to cJSON: cJSON accepts more than RFC 8259 (any byte up to 0x20 as
 * whitespace, raw control characters in strings, numbers such as 01, 1. or -.5), and text that
 * is only cJSON-valid must not be copied verbatim into what we send to a strict receiver.
 * Threads: any (no state).
 */
#ifndef TD_JSON_TEXT_H
#define TD_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when the LEN bytes at S are exactly one JSON value by RFC 8259 (whitespace around it
 * allowed), nested at most 1000 deep like cJSON. UTF-8 validity is the caller's check. On
 * true, [*start, *end) is the value without the whitespace around it (START/END may be NULL). */
bool td_json_strict(const char *s, size_t len, size_t *start, size_t *end);
/* The same with at most MAX_DEPTH containers nested (td_json_strict: 1000). A \u escape of a
 * surrogate passes only as a high-low pair, as cJSON reads it; so, with no \u0000 in it, valid
 * UTF-8 and numbers of any length (Debian's cJSON), what passes is text cJSON accepts. */
bool td_json_strict_depth(const char *s, size_t len, int max_depth, size_t *start, size_t *end);

/* True when only JSON blanks (space, tab, LF, CR) lie in [P, STOP): what may follow a document
 * after cJSON_ParseWithLengthOpts stopped at P. A NULL P (cJSON gave no end) is false. */
bool td_json_blank_to(const char *p, const char *stop);

/* Copies the LEN bytes at S (strict JSON: td_json_strict said so) to OUT (LEN + 1 bytes) without
 * the blanks between tokens, NUL-terminated, and returns the length written. Strings and numbers
 * stay byte for byte; only whitespace outside strings goes, so the text fits on one line (a
 * JSON-lines file) as Go's encoding/json writes a json.RawMessage. */
size_t td_json_compact(const char *s, size_t len, char *out);

/* The span [*start, *end) of the value of the INDEX-th member (from 0, in text order) of the
 * object that S holds. S must be text cJSON accepted as an object: with cJSON's member order,
 * the index names the same member. False when S is not laid out as expected. */
bool td_json_member_span(const char *s, size_t len, size_t index, size_t *start, size_t *end);

/* Steps through the elements of the array that S holds (text cJSON accepted): *pos is 0 before
 * the first call; each call gives the next element's span and true, false after the last. */
bool td_json_element_next(const char *s, size_t len, size_t *pos, size_t *start, size_t *end);

#endif
