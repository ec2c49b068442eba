/*
** azb_schema.h: the schema area (internal): the descriptor tables of the
** REST bodies (azb_pooldesc.c, azb_vmdesc.c, azb_netdesc.c) and the
** helpers their rules use from the walker (azb_schema.c). The types are
** in azb.h, beside the encoder that reads them.
** Dependencies run one way: descriptors -> walker -> image, JSON, aux, text.
*/
#ifndef AZB_SCHEMA_H
#define AZB_SCHEMA_H

#include "azb.h"

/* A body validate() knows: kind name, path root, descriptor, metatable. */
typedef struct azb_kind {
  const char *kind;                 /* "pool", "pool.resize", ... */
  const char *root;                 /* "pool", "resize", ... */
  const azb_object *object;
  const char *tname;                /* metatable of the normalised copy */
} azb_kind;

/* Initialiser shorthands (plain designated initialisers, no X-macros). */
#define AZB_OBJECT(nm, fl, rl) { (nm), (fl), sizeof(fl) / sizeof((fl)[0]), (rl) }
#define F_STR(n, fl)           { .name = (n), .type = AZB_T_STRING, .flags = (fl) }
#define F_STRN(n, fl, lo, hi, ck) { .name = (n), .type = AZB_T_STRING, \
    .flags = (fl), .min = (lo), .max = (hi), .check = (ck) }
#define F_INT(n, fl, lo, hi)   { .name = (n), .type = AZB_T_INT, .flags = (fl), \
    .min = (lo), .max = (hi) }
#define F_INTC(n, fl, lo, hi, ck) { .name = (n), .type = AZB_T_INT, \
    .flags = (fl), .min = (lo), .max = (hi), .check = (ck) }
#define F_BOOL(n, fl)          { .name = (n), .type = AZB_T_BOOL, .flags = (fl) }
#define F_ENUM(n, fl, e)       { .name = (n), .type = AZB_T_ENUM, .flags = (fl), \
    .enums = (e) }
#define F_DUR(n, fl, lo, hi)   { .name = (n), .type = AZB_T_DURATION, \
    .flags = (fl), .dmin = (lo), .dmax = (hi) }
#define F_OBJ(n, fl, o)        { .name = (n), .type = AZB_T_OBJECT, .flags = (fl), \
    .object = &(o) }
#define F_ARR(n, fl, o, lo, hi) { .name = (n), .type = AZB_T_ARRAY, .flags = (fl), \
    .object = &(o), .elem = AZB_T_OBJECT, .min = (lo), .max = (hi) }
#define F_ARRSTR(n, fl, lo, hi, ck) { .name = (n), .type = AZB_T_ARRAY, \
    .flags = (fl), .elem = AZB_T_STRING, .min = (lo), .max = (hi), .check = (ck) }
#define F_ARRENUM(n, fl, e)    { .name = (n), .type = AZB_T_ARRAY, .flags = (fl), \
    .elem = AZB_T_ENUM, .enums = (e) }
#define F_MAPSTR(n, fl)        { .name = (n), .type = AZB_T_MAP, .flags = (fl), \
    .elem = AZB_T_STRING }
#define F_CUSTOM(n, fl, fn, o) { .name = (n), .type = AZB_T_CUSTOM, .flags = (fl), \
    .custom = (fn), .object = &(o) }

#define AZB_INT32_MAX  ((lua_Integer)2147483647)

/* Descriptor data (azb_pooldesc.c, azb_vmdesc.c, azb_netdesc.c). */
extern const azb_kind azb_kinds[];          /* terminated by kind == NULL */
extern const azb_object azb_VirtualMachineConfiguration;
extern const azb_object azb_VirtualMachineConfigurationUpdate;
extern const azb_object azb_NetworkConfiguration;
extern const azb_object azb_NetworkConfigurationUpdate;
extern const azb_object azb_BatchNodeIdentityReference;
extern const azb_object azb_ContainerRegistryReference;
extern const char *const azb_E_ElevationLevel[];

/* Helpers for rules (azb_schema.c). */
/* Field present in table t (not nil, not JSON null)? */
int azb_sch_has(lua_State *L, int t, const char *key);
/* Fetch from a normalised copy; return 0 when absent. Strings stay
** anchored by the copy. */
int azb_sch_getint(lua_State *L, int t, const char *key, lua_Integer *out);
const char *azb_sch_getstr(lua_State *L, int t, const char *key);
int azb_sch_getbool(lua_State *L, int t, const char *key);   /* -1 absent */
/* Push t[k1][k2]... (NULL-terminated keys) or nil; returns its type. */
int azb_sch_push(lua_State *L, int t, ...);
/* Check the string at idx against an ARM id shape ("*" = any non-empty
** segment, NULL end); on a mismatch record "expected <pattern>, got
** '<value>'" and return 0. */
int azb_sch_shape(azb_vctx *v, int idx, const char *const *shape,
                  const char *pattern);

#endif
