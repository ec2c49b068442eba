/*
** azb.h: internal header of the azbatch.core module.
** Everything here has hidden visibility; the only exported symbol is
** luaopen_azbatch_core.
*/
#ifndef AZB_H
#define AZB_H

#include <stddef.h>
#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"

#define AZB_VERSION       "0.1.0"
#define AZB_API_VERSION   "2025-06-01"

/* Metatable names (also the __name shown in messages). */
#define AZB_IMAGEREF   "azbatch.ImageReference"
#define AZB_VMCONFIG   "azbatch.VmConfiguration"
#define AZB_POOLSPEC   "azbatch.PoolSpec"
#define AZB_ARRAY      "azbatch.Array"    /* marks a table that encodes as a JSON array */


/*
** {======================================================
** Field paths and validation problems
** =======================================================
*/

#define AZB_PATH_MAX    24    /* deepest nesting the validator follows */
#define AZB_MAX_ERRORS  20    /* problems collected before giving up */

typedef struct azb_pathseg {
  const char *key;       /* field name, or NULL for an array index */
  lua_Integer index;     /* 1-based index when key == NULL */
} azb_pathseg;

/*
** Validation context. Lives on the C stack of the Lua-facing function.
** 'errors' is the absolute stack index of a Lua array collecting
** {field=, message=} tables; 'warnings' likewise (0 when not collected).
*/
typedef struct azb_vctx {
  lua_State *L;
  const char *root;        /* "pool", "vmConfiguration", "imageReference" */
  int depth;
  azb_pathseg path[AZB_PATH_MAX];
  int errors;              /* stack index of the errors array */
  int nerrors;             /* problems recorded (may exceed AZB_MAX_ERRORS) */
  int warnings;            /* stack index of the warnings array, or 0 */
  int nwarnings;
} azb_vctx;

/* Set up a context: pushes the errors and warnings tables on the stack. */
void azb_vctx_init(azb_vctx *v, lua_State *L, const char *root);
void azb_path_key(azb_vctx *v, const char *key);
void azb_path_index(azb_vctx *v, lua_Integer i);
void azb_path_pop(azb_vctx *v);
/* Push the current path as a string ("pool.a.b[2].c"). */
void azb_path_push(azb_vctx *v);
/* Record a problem at the current path (printf-like, lua_pushfstring formats). */
void azb_verror(azb_vctx *v, const char *fmt, ...);
/* Record a problem at the current path extended by 'key'. */
void azb_verror_at(azb_vctx *v, const char *key, const char *fmt, ...);
/* Record a warning at the current path; 'recommended' may be NULL. */
void azb_vwarn(azb_vctx *v, const char *recommended, const char *fmt, ...);
/*
** If problems were recorded, push nil, message, err and return 3;
** otherwise return 0 and leave the stack as it was.
*/
int azb_vctx_fail(azb_vctx *v);

/* }====================================================== */


/*
** {======================================================
** Results
** =======================================================
*/

/*
** Push fail, "<msg>", {kind=kind, field=field}; returns 3.
** 'field' may be NULL. The err table is left for the caller to extend
** only through azb_fail_table.
*/
int azb_fail(lua_State *L, const char *kind, const char *field,
             const char *fmt, ...);

/* Register funcs into the table on top, with 'nup' shared upvalues. */
void azb_setfuncs(lua_State *L, const luaL_Reg *l, int nup);

/* Create a metatable with methods table as __index. Leaves it on the stack. */
void azb_newclass(lua_State *L, const char *tname, const luaL_Reg *meta,
                  const luaL_Reg *methods);

/* Compare two strings ignoring ASCII case. */
int azb_strieq(const char *a, const char *b);
int azb_strnieq(const char *a, const char *b, size_t n);

/* }====================================================== */


/*
** {======================================================
** Pure parsers (no Lua; never raise; fuzzed)
** =======================================================
*/

/* ISO-8601 duration ("PT15M", "P1DT2H30M", "PT0.5S"); returns NULL or why. */
const char *azb_duration_parse(const char *s, size_t len, double *seconds);
/* Format whole seconds as a canonical duration ("PT30M", "P1DT2H"). buf >= 48. */
void azb_duration_format(double seconds, char *buf, size_t bufsz);

typedef enum azb_armkind {
  AZB_ARM_NONE = 0,
  AZB_ARM_GALLERY_VERSION,   /* .../galleries/g/images/i/versions/v */
  AZB_ARM_GALLERY_IMAGE,     /* .../galleries/g/images/i (latest) */
  AZB_ARM_MANAGED_IMAGE,     /* .../providers/Microsoft.Compute/images/n */
  AZB_ARM_SHARED_GALLERY,    /* /SharedGalleries/{uniq}/Images/i[/Versions/v] */
  AZB_ARM_COMMUNITY_GALLERY  /* /CommunityGalleries/{name}/Images/i[/Versions/v] */
} azb_armkind;

typedef struct azb_span { const char *p; size_t n; } azb_span;

typedef struct azb_armid {
  azb_armkind kind;
  azb_span subscription, resource_group, gallery, image, version, name;
} azb_armid;

/*
** Parse an image resource id. Returns NULL on success or a static message
** saying what is wrong. Spans point into 's'.
*/
const char *azb_armid_parse(const char *s, size_t len, azb_armid *out);

/* }====================================================== */


/*
** {======================================================
** Areas: each registers its functions into the module table on top
** =======================================================
*/

void azb_image_open(lua_State *L);
void azb_schema_open(lua_State *L);
void azb_json_open(lua_State *L);
void azb_plan_open(lua_State *L);

/* Validate an image reference (table or string at idx) within v; push the
** normalised table (with AZB_IMAGEREF metatable) or nil on problems. */
void azb_image_check(azb_vctx *v, int idx);

/*
** Check nodeAgentSKUId against the normalised image reference at imgidx
** (absolute index); records problems at the current path, which is the
** virtual machine configuration.
*/
void azb_image_check_agent(azb_vctx *v, int imgidx, const char *agent);

/* Planner figures used by the pool validator's warnings. */
lua_Integer azb_plan_replicas(lua_Integer nodes);
double azb_plan_resize_timeout(lua_Integer nodes);   /* seconds */

/* }====================================================== */

#endif
