/*
** azb_schema.c: the one walker over the descriptor tables. It validates
** a request body and builds its normalised deep copy in the same pass.
** Every encode of a body goes through it again (spec:json(),
** core.json_encode), so what is sent is what was just checked, whatever
** happened to the table since it was first validated.
** Registers core.pool_spec, core.vm_configuration, core.validate and
** core.json_encode. Uses the descriptors, azb_image.c, azb_json.c (the
** encoder, given the descriptor), azb_aux.c and azb_text.c; none of them
** uses it (the encoder calls back only through the shaper passed to it).
*/
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "azb_schema.h"

#define AZB_KINDS  "azbatch.kinds"   /* registry: class metatable -> azb_kind */


/*
** {======================================================
** Helpers shared with the rules
** =======================================================
*/

/* A table core.array (or the JSON decoder) marked as an array? */
static int is_marked_array(lua_State *L, int idx) {
  int r;
  if (!lua_getmetatable(L, idx))
    return 0;
  luaL_getmetatable(L, AZB_ARRAY);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

static const char *type_name(lua_State *L, int idx) {
  if (azb_isnull(L, idx))
    return "null";
  if (lua_type(L, idx) == LUA_TTABLE && is_marked_array(L, idx))
    return "array";
  return luaL_typename(L, idx);
}

int azb_sch_has(lua_State *L, int t, const char *key) {
  int has;
  lua_pushstring(L, key);
  lua_rawget(L, t);
  has = !lua_isnil(L, -1) && !azb_isnull(L, -1);
  lua_pop(L, 1);
  return has;
}

int azb_sch_getint(lua_State *L, int t, const char *key, lua_Integer *out) {
  int ok;
  lua_pushstring(L, key);
  lua_rawget(L, t);
  ok = lua_isinteger(L, -1);
  if (ok)
    *out = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return ok;
}

const char *azb_sch_getstr(lua_State *L, int t, const char *key) {
  const char *s = NULL;
  lua_pushstring(L, key);
  lua_rawget(L, t);
  if (lua_type(L, -1) == LUA_TSTRING)
    s = lua_tostring(L, -1);   /* the copy keeps it alive */
  lua_pop(L, 1);
  return s;
}

int azb_sch_getbool(lua_State *L, int t, const char *key) {
  int r = -1;
  lua_pushstring(L, key);
  lua_rawget(L, t);
  if (lua_isboolean(L, -1))
    r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

int azb_sch_push(lua_State *L, int t, ...) {
  va_list ap;
  const char *key;
  lua_pushvalue(L, t);
  va_start(ap, t);
  while ((key = va_arg(ap, const char *)) != NULL) {
    if (lua_type(L, -1) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_pushnil(L);
      break;
    }
    lua_pushstring(L, key);
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
  va_end(ap);
  return lua_type(L, -1);
}

static int seg_eq(const char *p, size_t n, const char *word) {
  return strlen(word) == n && azb_strnieq(p, word, n);
}

static int armshape(const char *s, size_t len, const char *const *shape) {
  size_t i = 0;
  int k = 0;
  if (len == 0 || s[0] != '/')
    return 0;
  while (i < len) {
    size_t start = ++i, n;       /* skip the '/' */
    while (i < len && s[i] != '/')
      i++;
    n = i - start;
    if (shape[k] == NULL || n == 0)
      return 0;
    if (strcmp(shape[k], "*") != 0 && !seg_eq(s + start, n, shape[k]))
      return 0;
    k++;
  }
  return shape[k] == NULL;
}

int azb_sch_shape(azb_vctx *v, int idx, const char *const *shape,
                  const char *pattern) {
  size_t len;
  const char *s = lua_tolstring(v->L, idx, &len);
  if (armshape(s, len, shape))
    return 1;
  azb_verror(v, "expected %s, got %s", pattern,
             azb_text_pushquoted(v->L, s, len, '\''));
  lua_pop(v->L, 1);
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** The walker: every walk_* leaves exactly one value (copy or nil)
** =======================================================
*/

static void walk_value(azb_vctx *v, const azb_field *f, int elem, int idx);

static int type_error(azb_vctx *v, const char *want, int idx) {
  azb_verror(v, "expected %s, got %s", want, type_name(v->L, idx));
  lua_pushnil(v->L);
  return 0;
}

/*
** Enter the table at idx, or push nil and return 0 when it is one of the
** tables being walked (a cycle). The descriptors nest 8 levels at most;
** the depth bound only keeps the arrays safe.
*/
static int enter(azb_vctx *v, int idx) {
  lua_State *L = v->L;
  const void *p = lua_topointer(L, idx);
  if (v->nopen >= AZB_PATH_MAX) {
    azb_verror(v, "nested too deeply");
    lua_pushnil(L);
    return 0;
  }
  for (int i = 0; i < v->nopen; i++)
    if (v->open[i] == p) {
      azb_path_pushto(v, v->opendepth[i]);
      azb_verror(v, "cycle: the same table as %s", lua_tostring(L, -1));
      lua_pop(L, 1);
      lua_pushnil(L);
      return 0;
    }
  v->open[v->nopen] = p;
  v->opendepth[v->nopen] = v->depth;
  v->nopen++;
  luaL_checkstack(L, 8, "nested too deeply");
  return 1;
}

static void walk_object(azb_vctx *v, const azb_object *o, int idx) {
  lua_State *L = v->L;
  uint64_t meant = 0;   /* fields an unknown key looks like */
  int copy;
  if (!enter(v, idx))
    return;
  lua_createtable(L, 0, (int)o->nfields);
  copy = lua_gettop(L);
  azb_vcheck_keys(v, idx, AZB_MEMBER_NAMES(o->fields, o->nfields, name), &meant);
  for (size_t i = 0; i < o->nfields; i++) {
    const azb_field *f = &o->fields[i];
    lua_pushstring(L, f->name);
    lua_rawget(L, idx);
    if (lua_isnil(L, -1) || azb_isnull(L, -1)) {
      if ((f->flags & AZB_REQUIRED) && !(i < 64 && (meant >> i) & 1))
        azb_vmissing_at(v, f->name, "required field missing");
      lua_pop(L, 1);
      continue;
    }
    azb_path_key(v, f->name);
    walk_value(v, f, 0, lua_gettop(L));
    azb_path_pop(v);
    if (!lua_isnil(L, -1))
      lua_setfield(L, copy, f->name);
    else
      lua_pop(L, 1);
    lua_pop(L, 1);   /* the original */
  }
  if (o->rule != NULL)
    o->rule(v, idx, copy);
  lua_settop(L, copy);
  v->nopen--;
}

/* A sequence 1..n and nothing else; returns n or -1 (recorded). */
static lua_Integer sequence_length(azb_vctx *v, int idx) {
  lua_State *L = v->L;
  lua_Integer n = 0, maxk = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      lua_Integer k = lua_tointeger(L, -1);
      n++;
      if (k > maxk)
        maxk = k;
      continue;
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t len;
      const char *k = lua_tolstring(L, -1, &len);
      azb_verror(v, "expected array, got table with key %s",
                 azb_text_pushquoted(L, k, len, '\''));
      lua_pop(L, 2);
    }
    else if (lua_isinteger(L, -1)) {
      azb_verror(v, "expected array, got table with key %I",
                 (LUAI_UACINT)lua_tointeger(L, -1));
      lua_pop(L, 1);
    }
    else {
      azb_verror(v, "expected array, got table with key of type %s",
                 type_name(L, -1));
      lua_pop(L, 1);
    }
    return -1;
  }
  if (maxk != n) {
    azb_verror(v, "expected array, got table with key %I", (LUAI_UACINT)maxk);
    return -1;
  }
  return n;
}

static void walk_array(azb_vctx *v, const azb_field *f, int idx) {
  lua_State *L = v->L;
  lua_Integer n;
  int copy;
  if (!enter(v, idx))
    return;
  n = sequence_length(v, idx);
  if (n < 0) {
    lua_pushnil(L);
    v->nopen--;
    return;
  }
  if (f->max > 0 && n > f->max)
    azb_verror(v, "at most %I items, got %I", (LUAI_UACINT)f->max, (LUAI_UACINT)n);
  if (n < f->min)
    azb_verror(v, "at least %I item%s", (LUAI_UACINT)f->min, f->min == 1 ? "" : "s");
  lua_createtable(L, n < 1024 ? (int)n : 1024, 0);
  luaL_setmetatable(L, AZB_ARRAY);   /* {} stays [] in JSON */
  copy = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    azb_path_index(v, i);
    walk_value(v, f, 1, lua_gettop(L));
    azb_path_pop(v);
    if (!lua_isnil(L, -1))
      lua_rawseti(L, copy, i);
    else
      lua_pop(L, 1);
    lua_pop(L, 1);
  }
  v->nopen--;
}

/* Free-form object: string keys, values of type f->elem (strings here).
** The keys of a secret map (protectedSettings) stay out of the paths. */
static void walk_map(azb_vctx *v, const azb_field *f, int idx) {
  lua_State *L = v->L;
  int copy, secret = (f->flags & AZB_SECRET) != 0;
  if (!enter(v, idx))
    return;
  lua_newtable(L);
  copy = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t len;
    const char *key;
    if (lua_type(L, -2) != LUA_TSTRING) {
      azb_verror(v, "unexpected %s key (keys are strings)", type_name(L, -2));
      lua_pop(L, 1);
      continue;
    }
    key = lua_tolstring(L, -2, &len);
    if (!azb_utf8_valid(key, len)) {
      azb_verror(v, "a key is not valid UTF-8");
      lua_pop(L, 1);
      continue;
    }
    if (!secret)
      azb_path_lkey(v, key, len);
    walk_value(v, f, 1, lua_gettop(L));
    if (!secret)
      azb_path_pop(v);
    if (!lua_isnil(L, -1)) {
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, copy);
    }
    else
      lua_pop(L, 1);
    lua_pop(L, 1);
  }
  v->nopen--;
}

static void list_enums(lua_State *L, const char *const *e) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 0; e[i] != NULL; i++) {
    if (i > 0)
      luaL_addstring(&b, ", ");
    luaL_addchar(&b, '\'');
    luaL_addstring(&b, e[i]);
    luaL_addchar(&b, '\'');
  }
  luaL_pushresult(&b);
}

static void walk_enum(azb_vctx *v, const azb_field *f, int idx) {
  lua_State *L = v->L;
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  for (int i = 0; f->enums[i] != NULL; i++) {
    if (strlen(f->enums[i]) == len && azb_strnieq(f->enums[i], s, len)) {
      lua_pushstring(L, f->enums[i]);
      return;
    }
  }
  list_enums(L, f->enums);
  azb_verror(v, "must be one of %s", lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_pushnil(L);
}

static void walk_duration(azb_vctx *v, const azb_field *f, int idx) {
  lua_State *L = v->L;
  size_t len;
  const char *s = lua_tolstring(L, idx, &len), *why, *shown;
  double secs;
  char bound[48];
  why = azb_duration_parse(s, len, &secs);
  shown = azb_text_pushquoted(L, s, len, '\'');
  if (why != NULL)
    azb_verror(v, "%s, got %s", why, shown);
  else if (f->dmin > 0 && secs < f->dmin) {
    azb_duration_format(f->dmin, bound, sizeof bound);
    azb_verror(v, "must be at least %s, got %s", bound, shown);
  }
  else if (f->dmax > 0 && secs > f->dmax) {
    azb_duration_format(f->dmax, bound, sizeof bound);
    azb_verror(v, "must be at most %s, got %s", bound, shown);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);   /* the body carries the string as given */
}

static void walk_string(azb_vctx *v, const azb_field *f, int elem, int idx) {
  lua_State *L = v->L;
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (!azb_utf8_valid(s, len)) {
    azb_verror(v, "not valid UTF-8");
    lua_pushnil(L);
    return;
  }
  if (!elem) {
    size_t chars = azb_utf8_len(s, len);
    if (f->min > 0 && len == 0)
      azb_verror(v, "must not be empty");
    else if (f->max > 0 && chars > (size_t)f->max)
      azb_verror(v, "must be at most %I characters, got %I",
                 (LUAI_UACINT)f->max, (LUAI_UACINT)chars);
  }
  lua_pushvalue(L, idx);
}

static void walk_int(azb_vctx *v, const azb_field *f, int idx) {
  lua_State *L = v->L;
  lua_Integer i;
  if (lua_isinteger(L, idx))
    i = lua_tointeger(L, idx);
  else {
    lua_Number d = lua_tonumber(L, idx);
    /* 2.0 is 2 (Lua code may compute it) */
    if (!isfinite(d) || d != floor(d)) {
      type_error(v, "integer", idx);
      return;
    }
    i = (d < (lua_Number)f->min || d > (lua_Number)f->max) ? f->min - 1
                                                            : (lua_Integer)d;
  }
  if (i < f->min || i > f->max) {
    azb_verror(v, "must be an integer in [%I, %I]", (LUAI_UACINT)f->min,
               (LUAI_UACINT)f->max);
    lua_pushnil(L);
    return;
  }
  lua_pushinteger(L, i);
}

static void walk_value(azb_vctx *v, const azb_field *f, int elem, int idx) {
  lua_State *L = v->L;
  azb_type t = elem ? f->elem : f->type;
  int lt = lua_type(L, idx);
  switch (t) {
    case AZB_T_STRING:
      if (lt != LUA_TSTRING) { type_error(v, "string", idx); return; }
      walk_string(v, f, elem, idx);
      break;
    case AZB_T_ENUM:
      if (lt != LUA_TSTRING) { type_error(v, "string", idx); return; }
      walk_enum(v, f, idx);
      break;
    case AZB_T_DURATION:
      if (lt != LUA_TSTRING) { type_error(v, "string", idx); return; }
      walk_duration(v, f, idx);
      break;
    case AZB_T_INT:
      if (lt != LUA_TNUMBER) { type_error(v, "integer", idx); return; }
      walk_int(v, f, idx);
      break;
    case AZB_T_BOOL:
      if (lt != LUA_TBOOLEAN) { type_error(v, "boolean", idx); return; }
      lua_pushvalue(L, idx);
      break;
    case AZB_T_OBJECT:   /* a JSON [] is no object */
      if (lt != LUA_TTABLE || is_marked_array(L, idx)) {
        type_error(v, "table", idx);
        return;
      }
      walk_object(v, f->object, idx);
      return;
    case AZB_T_ARRAY:
      if (lt != LUA_TTABLE) { type_error(v, "array", idx); return; }
      walk_array(v, f, idx);
      return;
    case AZB_T_MAP:
      if (lt != LUA_TTABLE || is_marked_array(L, idx)) {
        type_error(v, "table", idx);
        return;
      }
      walk_map(v, f, idx);
      return;
    case AZB_T_CUSTOM:   /* its copy must encode: the checker sees to it */
      f->custom(v, idx);
      return;
  }
  if (f->check != NULL && !lua_isnil(L, -1))
    f->check(v, lua_gettop(L));
}

/* }====================================================== */


/*
** {======================================================
** Kinds: their classes, validation, and the encoding of bodies
** =======================================================
*/

static const azb_kind *schema_kind(const char *kind) {
  for (const azb_kind *k = azb_kinds; k->kind != NULL; k++)
    if (strcmp(k->kind, kind) == 0)
      return k;
  return NULL;
}

/*
** The kind of a table by its metatable's identity (a registry map Lua
** code cannot reach), never by a field of the metatable it could change.
*/
static const azb_kind *kind_of(lua_State *L, int idx) {
  const azb_kind *k;
  if (!lua_getmetatable(L, idx))
    return NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, AZB_KINDS);
  lua_insert(L, -2);
  lua_rawget(L, -2);
  k = (const azb_kind *)lua_touserdata(L, -1);
  lua_pop(L, 2);
  return k;
}

/* Walk the table at idx as k within v: push the copy and return 1, or
** push nothing and return 0 when problems were recorded. */
static int check_kind(azb_vctx *v, const azb_kind *k, int idx) {
  int before = v->nerrors;
  walk_object(v, k->object, idx);
  if (v->nerrors == before)
    return 1;
  lua_pop(v->L, 1);
  return 0;
}

/* An image reference, by azb_image.c's own checks; same protocol. */
static int check_image(azb_vctx *v, int idx) {
  int before = v->nerrors;
  azb_image_check(v, idx);
  if (v->nerrors == before)
    return 1;
  lua_pop(v->L, 1);
  return 0;
}

/* The encoder's shaper: a body or image reference inside a plain value
** is validated and written by its descriptor. */
static int shape(azb_vctx *v, int idx, const azb_object **o) {
  const azb_kind *k = kind_of(v->L, idx);
  if (k != NULL) {
    *o = k->object;
    return check_kind(v, k, idx) ? 1 : -1;
  }
  if (azb_image_is(v->L, idx)) {
    *o = &azb_BatchVmImageReference;
    return check_image(v, idx) ? 1 : -1;
  }
  return 0;
}

/*
** Validate and encode the value at 1: as kind k when given, else as what
** its metatable says, else generically. Returns the text or fail.
*/
static int encode(lua_State *L, const azb_kind *k) {
  azb_vctx v;
  int image = 0, ok = 0;
  lua_settop(L, 1);
  if (k == NULL && lua_type(L, 1) == LUA_TTABLE) {
    k = kind_of(L, 1);
    image = k == NULL && azb_image_is(L, 1);
  }
  azb_vctx_init(&v, L, k != NULL ? k->root : image ? "imageReference" : "value");
  if (k != NULL && lua_type(L, 1) != LUA_TTABLE)
    azb_verror(&v, "expected table, got %s", type_name(L, 1));
  else if (k != NULL)
    ok = check_kind(&v, k, 1) && azb_json_encode(&v, -1, k->object, NULL);
  else if (image)
    ok = check_image(&v, 1) &&
         azb_json_encode(&v, -1, &azb_BatchVmImageReference, NULL);
  else
    ok = azb_json_encode(&v, 1, NULL, shape);
  return ok ? 1 : azb_vctx_fail(&v);
}

/*
** Validate the table at 1 as 'k'; on success leave copy, warnings on
** the stack and return 2, else return the fail triple's 3.
*/
static int validate_as(lua_State *L, const azb_kind *k) {
  azb_vctx v;
  int nret;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  azb_vctx_init(&v, L, k->root);          /* errors 2, warnings 3 */
  walk_object(&v, k->object, 1);          /* copy 4 */
  nret = azb_vctx_fail(&v);
  if (nret > 0)
    return nret;
  luaL_setmetatable(L, k->tname);
  lua_pushvalue(L, v.warnings);
  return 2;
}

/* core.pool_spec(t) -> PoolSpec, warnings | fail */
static int schema_pool_spec(lua_State *L) {
  return validate_as(L, schema_kind("pool"));
}

/* core.vm_configuration(t) -> VmConfiguration | fail */
static int schema_vm_configuration(lua_State *L) {
  int n = validate_as(L, schema_kind("virtualMachineConfiguration"));
  if (n == 2)
    lua_pop(L, 1);   /* the warnings */
  return n == 2 ? 1 : n;
}

/* core.validate(kind, t) -> normalised table, warnings | fail */
static int schema_validate(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const azb_kind *k = schema_kind(name);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (k == NULL)
    return luaL_argerror(L, 1, lua_pushfstring(L, "unknown kind '%s'", name));
  lua_remove(L, 1);
  return validate_as(L, k);
}

/* core.json_encode(v [, kind]) -> string | fail; a body is validated */
static int schema_json_encode(lua_State *L) {
  const azb_kind *k = NULL;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    const char *name = luaL_checkstring(L, 2);
    k = schema_kind(name);
    if (k == NULL)
      return luaL_argerror(L, 2, lua_pushfstring(L, "unknown kind '%s'", name));
  }
  return encode(L, k);
}

/* spec:json() -> string | fail: validated again, as it is now */
static int spec_json(lua_State *L) {
  const azb_kind *k = lua_type(L, 1) == LUA_TTABLE ? kind_of(L, 1) : NULL;
  if (k == NULL)
    return luaL_typeerror(L, 1, AZB_POOLSPEC);
  return encode(L, k);
}

/* tostring(obj) -> "azbatch.PoolSpec(<id>)", "azbatch.PoolResizeOptions" */
static int spec_tostring(lua_State *L) {
  const char *name = "azbatch.Spec";
  char label[48];
  size_t n = 0;
  if (luaL_getmetafield(L, 1, "__name") == LUA_TSTRING)
    name = lua_tostring(L, -1);
  if (lua_type(L, 1) == LUA_TTABLE) {
    const char *key = strcmp(name, AZB_VMCONFIG) == 0 ? "nodeAgentSKUId" : "id";
    lua_pushstring(L, key);
    if (lua_rawget(L, 1) == LUA_TSTRING)
      n = azb_text_clean(lua_tostring(L, -1), lua_rawlen(L, -1), label,
                         sizeof label);
  }
  if (n > 0)
    lua_pushfstring(L, "%s(%s)", name, lua_pushlstring(L, label, n));
  else
    lua_pushstring(L, name);
  return 1;
}

static const luaL_Reg schema_funcs[] = {
  {"pool_spec", schema_pool_spec},
  {"vm_configuration", schema_vm_configuration},
  {"validate", schema_validate},
  {"json_encode", schema_json_encode},
  {NULL, NULL}
};

static const luaL_Reg spec_meta[] = {
  {"__tostring", spec_tostring},
  {NULL, NULL}
};

static const luaL_Reg spec_methods[] = {
  {"json", spec_json},
  {NULL, NULL}
};

void azb_schema_open(lua_State *L) {
  lua_newtable(L);   /* metatable -> kind */
  for (const azb_kind *k = azb_kinds; k->kind != NULL; k++) {
    azb_newclass(L, k->tname, spec_meta, spec_methods);
    lua_pushstring(L, k->kind);
    lua_setfield(L, -2, "__kind");
    /* setmetatable(spec, nil) would turn a checked body into a plain
    ** table: refuse it; getmetatable still returns the class */
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__metatable");
    lua_pushlightuserdata(L, (void *)k);
    lua_rawset(L, -3);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, AZB_KINDS);
  luaL_setfuncs(L, schema_funcs, 0);
}

/* }====================================================== */
