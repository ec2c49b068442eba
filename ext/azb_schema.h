/*
** azb_schema.h: field descriptors for the REST bodies (internal).
** One static descriptor table per object of the contract drives both
** validation (azb_schema.c) and JSON shaping (azb_json.c).
*/
#ifndef AZB_SCHEMA_H
#define AZB_SCHEMA_H

#include "azb.h"

typedef enum azb_type {
  AZB_T_STRING,
  AZB_T_INT,        /* Lua integer; integral floats (JSON decoders) accepted */
  AZB_T_BOOL,
  AZB_T_ENUM,       /* string matched ignoring case, stored as in the contract */
  AZB_T_DURATION,   /* ISO-8601 duration string, bounds in seconds */
  AZB_T_OBJECT,     /* nested object: 'object' */
  AZB_T_ARRAY,      /* sequence of 'elem' (OBJECT, STRING or ENUM) */
  AZB_T_MAP,        /* free-form JSON object, string keys, 'elem' values */
  AZB_T_CUSTOM      /* 'custom' validates and pushes the copy */
} azb_type;

#define AZB_REQUIRED  0x1u   /* missing (nil or JSON null) is an error */
#define AZB_SECRET    0x2u   /* value never echoed in a message */

struct azb_object;

typedef struct azb_field {
  const char *name;
  azb_type type;
  unsigned flags;
  const struct azb_object *object;  /* OBJECT, ARRAY of OBJECT; CUSTOM: JSON key order */
  azb_type elem;                    /* ARRAY and MAP elements */
  const char *const *enums;         /* ENUM, ARRAY of ENUM; NULL-terminated */
  lua_Integer min, max;             /* INT range; STRING length in characters
                                    ** (max 0 = unbounded); ARRAY item count */
  double dmin, dmax;                /* DURATION bounds in seconds (0 = none) */
  /* Extra check on a scalar (each element of an ARRAY) after its type
  ** check; records problems at the current path; returns 0 on a problem. */
  int (*check)(azb_vctx *v, int idx);
  /* CUSTOM: validate the value at idx and push the copy (or nil). */
  void (*custom)(azb_vctx *v, int idx);
} azb_field;

typedef struct azb_object {
  const char *name;                 /* contract name, e.g. "BatchStartTask" */
  const azb_field *fields;          /* in the contract's property order */
  size_t nfields;
  /* Cross-field rules; path at the object. 'src' is the caller's table
  ** (presence), 'copy' the normalised copy (values). */
  void (*rule)(azb_vctx *v, int src, int copy);
} azb_object;

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
#define AZB_INT32_MIN  (-AZB_INT32_MAX - 1)

/* Deepest object nesting the walker and the encoder follow. */
#define AZB_SCHEMA_DEPTH  32
#define AZB_JSON_DEPTH    64

/* Descriptor data (azb_pooldesc.c, azb_vmdesc.c, azb_netdesc.c). */
extern const azb_kind azb_kinds[];          /* terminated by kind == NULL */
extern const azb_object azb_VirtualMachineConfiguration;
extern const azb_object azb_VirtualMachineConfigurationUpdate;
extern const azb_object azb_BatchVmImageReference;   /* JSON key order only */
extern const azb_object azb_NetworkConfiguration;
extern const azb_object azb_NetworkConfigurationUpdate;
extern const azb_object azb_BatchNodeIdentityReference;
extern const azb_object azb_ContainerRegistryReference;
extern const char *const azb_E_ElevationLevel[];
int azb_check_identity_id(azb_vctx *v, int idx);

/* Walker and helpers for rules (azb_schema.c). */
const azb_kind *azb_schema_kind(const char *kind);
/* Descriptor and root for a table whose metatable names one, or NULL. */
const azb_kind *azb_schema_of(lua_State *L, int idx);
int azb_sch_isnull(lua_State *L, int idx);
const char *azb_sch_typename(lua_State *L, int idx);
/* Field present in table t (not nil, not JSON null)? */
int azb_sch_has(lua_State *L, int t, const char *key);
/* Fetch from a normalised copy; return 0 when absent. Strings stay
** anchored by the copy. */
int azb_sch_getint(lua_State *L, int t, const char *key, lua_Integer *out);
const char *azb_sch_getstr(lua_State *L, int t, const char *key);
int azb_sch_getbool(lua_State *L, int t, const char *key);   /* -1 absent */
/* Push t[k1][k2]... (NULL-terminated keys) or nil; returns its type. */
int azb_sch_push(lua_State *L, int t, ...);
/* Check the string at idx with azb_sch_armshape; on a mismatch record
** "expected <pattern>, got '<value>'" and return 0. */
int azb_sch_shape(azb_vctx *v, int idx, const char *const *shape,
                  const char *pattern);
/* Push s (len bytes) cut to about 60 bytes, control bytes masked. */
const char *azb_sch_pushshort(lua_State *L, const char *s, size_t len);
/* Check an ARM id /subscriptions/{s}/resourceGroups/{g}/providers/...
** against the segments in 'shape' ("*" = any non-empty segment, NULL end;
** an open tail when the last entry is "**"). Returns 1 when it matches. */
int azb_sch_armshape(const char *s, size_t len, const char *const *shape);

/* Encode the value at idx (with 'kind' shaping it, or NULL for the
** metatable or generic rules). Pushes the string and returns 1, or
** pushes fail, message, err and returns 3. */
int azb_json_encode_value(lua_State *L, int idx, const azb_kind *kind);

#endif
