/* core.c - building the core's per-trigger runtime from a configuration, in one place.
 *
 * The daemon at start and every SIGHUP reload build triggers from a config; they used to do it
 * each in their own way, and the reload's copy forgot the payload schema, so a reload silently
 * switched schema validation off. Both now call td_core_trigger_init() and free with
 * td_core_trigger_fini(), so a trigger is the same whichever path built it. (First step of the
 * structural issue: the core built in one place.)
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

#include "jsonschema.h"

static struct td_sink *sink_named(struct td_sink *const *sinks, size_t nsinks, const char *name)
{
    for (size_t i = 0; name && i < nsinks; i++) {
        if (sinks[i] && strcmp(sinks[i]->name, name) == 0) {
            return sinks[i];
        }
    }
    return NULL;
}

int td_core_trigger_init(struct td_trigger_rt *trg, struct td_core *core,
                         const struct td_conf_trigger *conf, struct td_sink *const *sinks,
                         size_t nsinks, char *err, size_t errlen)
{
    trg->conf = conf;
    trg->core = core;
    trg->sink = sink_named(sinks, nsinks, conf->sink);
    trg->dead_letter = sink_named(sinks, nsinks, conf->delivery.dead_letter);
    trg->reply = sink_named(sinks, nsinks, conf->reply);
    if (!trg->sink) {
        snprintf(err, errlen, "%s:%d:%d: trigger '%s': unknown sink", conf->pos.file,
                 conf->pos.line, conf->pos.col, conf->name);
        return -1;
    }
    if (conf->schema) {
        char why[512];
        trg->schema = td_jsonschema_load(conf->schema, conf->pos.file, why, sizeof(why));
        if (!trg->schema) {
            snprintf(err, errlen, "%s:%d:%d: trigger '%s': schema: %s", conf->pos.file,
                     conf->pos.line, conf->pos.col, conf->name, why);
            return -1;
        }
    }
    return 0;
}

void td_core_trigger_fini(struct td_trigger_rt *trg)
{
    td_dispatch_trigger_free(trg);
    td_jsonschema_free(trg->schema);
    trg->schema = NULL;
}
