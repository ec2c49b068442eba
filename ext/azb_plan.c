/*
** azb_plan.c: the large-pool rules of the seed documents (one gallery
** replica per 600 VMs; for fixed-size pools a resizeTimeout of at least
** 15 minutes per 1000 VMs), core.plan, and the Lua face of durations.
*/
#include <string.h>

#include "azb.h"

#define VMS_PER_REPLICA    600
#define VMS_PER_TIMEOUT    1000
#define TIMEOUT_STEP       900.0   /* 15 minutes */
#define SERVICE_MIN        300.0   /* the service refuses less than PT5M */
#define INT32_MAXV         2147483647


/*
** {======================================================
** Pure rules
** =======================================================
*/

/*
** 0 VMs still need the image version replicated in the pool's region,
** so the answer is never below 1.
*/
lua_Integer azb_plan_replicas(lua_Integer nodes) {
  lua_Integer r;
  if (nodes <= 0)
    return 1;
  r = nodes / VMS_PER_REPLICA + (nodes % VMS_PER_REPLICA != 0);
  return r;
}

/* max(15 min, 15 min x ceil(n / 1000)), in seconds */
double azb_plan_resize_timeout(lua_Integer nodes) {
  lua_Integer steps;
  if (nodes <= 0)
    return TIMEOUT_STEP;
  steps = nodes / VMS_PER_TIMEOUT + (nodes % VMS_PER_TIMEOUT != 0);
  return TIMEOUT_STEP * (double)steps;
}

/* }====================================================== */


/*
** {======================================================
** Durations
** =======================================================
*/

/* Push seconds as an integer when whole, else as a float. */
static void pushseconds(lua_State *L, double s) {
  lua_Integer i = (lua_Integer)s;
  if ((double)i == s)
    lua_pushinteger(L, i);
  else
    lua_pushnumber(L, s);
}

static void pushduration(lua_State *L, double seconds) {
  char buf[64];
  azb_duration_format(seconds, buf, sizeof buf);
  lua_pushstring(L, buf);
}

/* core.parse_duration(s) -> seconds | fail */
static int parse_duration(lua_State *L) {
  size_t n;
  const char *s;
  const char *why;
  double seconds;
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_typeerror(L, 1, "string");
  s = lua_tolstring(L, 1, &n);
  why = azb_duration_parse(s, n, &seconds);
  if (why != NULL) {
    azb_text_pushquoted(L, s, n, '"');
    return azb_fail(L, "validation", "duration", "duration: %s, got %s", why,
                    lua_tostring(L, -1));
  }
  pushseconds(L, seconds);
  return 1;
}

/* core.format_duration(seconds) -> "PT30M" (raises on a bad number) */
static int format_duration(lua_State *L) {
  lua_Number s;
  if (lua_type(L, 1) != LUA_TNUMBER)
    return luaL_typeerror(L, 1, "number");
  s = lua_tonumber(L, 1);
  if (!(s >= 0) || s > 1e15)   /* negative, NaN, infinite, absurd */
    return luaL_argerror(L, 1, "non-negative finite number of seconds "
                               "expected");
  pushduration(L, (double)s);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** core.plan
** =======================================================
*/

static const char *const plan_fields[] = {
  "nodes", "targetDedicatedNodes", "targetLowPriorityNodes",
  "enableAutoScale", "autoscale", "resizeTimeout", "customImage",
  "replicas", NULL
};

static int rawgetfield(lua_State *L, int idx, const char *k) {
  lua_pushstring(L, k);
  return lua_rawget(L, idx);
}

/* Integer option in [0, INT32_MAX]: 1 valid, 0 absent, -1 invalid. */
static int get_count(azb_vctx *v, const char *key, lua_Integer *out) {
  lua_State *L = v->L;
  int ok = -1, isint;
  int t = rawgetfield(L, 1, key);
  if (t == LUA_TNUMBER) {
    lua_Integer n = lua_tointegerx(L, -1, &isint);
    if (isint && n >= 0 && n <= INT32_MAXV) {
      *out = n;
      ok = 1;
    }
    else
      azb_verror_at(v, key, "must be an integer in [0, 2147483647]");
  }
  else if (t != LUA_TNIL)
    azb_verror_at(v, key, "expected number, got %s", luaL_typename(L, -1));
  else
    ok = 0;
  lua_pop(L, 1);
  return ok;
}

/* Boolean option: -1 when absent or invalid, else 0 or 1. */
static int get_bool(azb_vctx *v, const char *key) {
  lua_State *L = v->L;
  int r = -1;
  int t = rawgetfield(L, 1, key);
  if (t == LUA_TBOOLEAN)
    r = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    azb_verror_at(v, key, "expected boolean, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
  return r;
}

/* resizeTimeout as a duration string or seconds; -1 when absent or bad. */
static double get_timeout(azb_vctx *v) {
  lua_State *L = v->L;
  double seconds = -1;
  int t = rawgetfield(L, 1, "resizeTimeout");
  if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    const char *why = azb_duration_parse(s, n, &seconds);
    if (why != NULL) {
      azb_text_pushquoted(L, s, n, '"');
      azb_verror_at(v, "resizeTimeout", "%s, got %s", why,
                    lua_tostring(L, -1));
      lua_pop(L, 1);
      seconds = -1;
    }
  }
  else if (t == LUA_TNUMBER) {
    seconds = lua_tonumber(L, -1);
    if (!(seconds >= 0) || seconds > 864000000.0) {
      azb_verror_at(v, "resizeTimeout", "must be a number of seconds in "
                    "[0, 864000000] or an ISO-8601 duration such as 'PT15M'");
      seconds = -1;
    }
  }
  else if (t != LUA_TNIL)
    azb_verror_at(v, "resizeTimeout", "expected string or number, got %s",
                  luaL_typename(L, -1));
  lua_pop(L, 1);
  return seconds;
}

/* Append the string on top to the array at idx. */
static void append(lua_State *L, int idx) {
  lua_rawseti(L, idx, (lua_Integer)lua_rawlen(L, idx) + 1);
}

/* Mark a result list so the JSON encoder writes [] even when empty. */
static void mark_array(lua_State *L, int idx) {
  if (luaL_getmetatable(L, AZB_ARRAY) == LUA_TTABLE)
    lua_setmetatable(L, idx);
  else
    lua_pop(L, 1);
}

/*
** core.plan{nodes=, targetDedicatedNodes=, targetLowPriorityNodes=,
**           enableAutoScale=, autoscale=, resizeTimeout=, customImage=,
**           replicas=} -> plan | fail
*/
static int plan(lua_State *L) {
  azb_vctx v;
  lua_Integer nodes = 0, ded = 0, low = 0, have_replicas = -1, tmp;
  int hasnodes, hasded, haslow, a1, a2, autoscale, custom, notes, result;
  double given, need;
  uint64_t meant = 0;   /* a typo of a count stands for it (bits 0-2) */
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  azb_vctx_init(&v, L, "plan");
  azb_vcheck_keys(&v, 1, AZB_NAMES(plan_fields), &meant);
  hasnodes = get_count(&v, "nodes", &nodes);
  hasded = get_count(&v, "targetDedicatedNodes", &ded);
  haslow = get_count(&v, "targetLowPriorityNodes", &low);
  if (get_count(&v, "replicas", &tmp) > 0)
    have_replicas = tmp;
  a1 = get_bool(&v, "enableAutoScale");
  a2 = get_bool(&v, "autoscale");
  custom = get_bool(&v, "customImage");
  given = get_timeout(&v);
  if (hasnodes && (hasded || haslow))
    azb_verror_at(&v, "nodes", "give nodes or targetDedicatedNodes and "
                  "targetLowPriorityNodes, not both");
  else if (!hasnodes && !hasded && !haslow && (meant & 7) == 0)
    azb_vmissing_at(&v, "nodes", "required field missing (the pool's total "
                    "VMs, or targetDedicatedNodes and targetLowPriorityNodes)");
  if (a1 >= 0 && a2 >= 0 && a1 != a2)
    azb_verror_at(&v, "autoscale", "contradicts enableAutoScale");
  if (azb_vctx_fail(&v))
    return 3;
  if (hasnodes <= 0)
    nodes = ded + low;
  autoscale = (a1 > 0 || a2 > 0);
  custom = (custom != 0);   /* absent means a custom image */
  need = azb_plan_resize_timeout(nodes);

  lua_createtable(L, 0, 10);
  result = lua_gettop(L);
  lua_createtable(L, 4, 0);
  notes = lua_gettop(L);
  mark_array(L, notes);
  mark_array(L, v.warnings);
  lua_pushinteger(L, nodes);
  lua_setfield(L, result, "nodes");
  lua_pushboolean(L, autoscale);
  lua_setfield(L, result, "autoscale");
  lua_pushboolean(L, custom);
  lua_setfield(L, result, "customImage");

  if (custom) {
    lua_Integer r = azb_plan_replicas(nodes);
    lua_pushinteger(L, r);
    lua_setfield(L, result, "replicas");
    if (nodes == 0)
      lua_pushliteral(L, "0 VMs need no replica to allocate, but the image "
                      "version still needs 1 replica in the pool's region");
    else
      lua_pushfstring(L, "one gallery replica per 600 VMs: %I VMs need %I "
                      "replica(s) of the image version in the pool's region",
                      (LUAI_UACINT)nodes, (LUAI_UACINT)r);
    append(L, notes);
    if (have_replicas >= 0 && have_replicas < r) {
      azb_path_key(&v, "replicas");
      azb_vwarn(&v, NULL, "%I replica(s) serve at most %I VMs; %I VMs need "
                "%I (one per 600 VMs in the pool's region)",
                (LUAI_UACINT)have_replicas,
                (LUAI_UACINT)(have_replicas * VMS_PER_REPLICA),
                (LUAI_UACINT)nodes, (LUAI_UACINT)r);
      azb_path_pop(&v);
      if (v.nwarnings <= AZB_MAX_ERRORS) {
        lua_rawgeti(L, v.warnings, v.nwarnings);
        lua_pushinteger(L, r);
        lua_setfield(L, -2, "recommended");
        lua_pop(L, 1);
      }
    }
  }
  else {
    lua_pushliteral(L, "marketplace images need no gallery replicas");
    append(L, notes);
    if (have_replicas >= 0) {
      lua_pushliteral(L, "replicas ignored: they apply to gallery images");
      append(L, notes);
    }
  }

  if (autoscale) {
    lua_pushliteral(L, "resizeTimeout is ignored by autoscale pools; plan "
                    "nodes as the largest size the formula can reach");
    append(L, notes);
  }
  else {
    pushduration(L, need);
    lua_setfield(L, result, "resizeTimeout");
    pushseconds(L, need);
    lua_setfield(L, result, "resizeTimeoutSeconds");
    pushduration(L, need);
    lua_pushfstring(L, "fixed-size pools need a resizeTimeout of at least 15 "
                    "minutes per 1000 VMs, never below the 15-minute "
                    "default: %s", lua_tostring(L, -1));
    lua_remove(L, -2);
    append(L, notes);
    if (given >= 0 && given < need) {
      pushduration(L, given);
      pushduration(L, need);
      azb_path_key(&v, "resizeTimeout");
      azb_vwarn(&v, lua_tostring(L, -1), "%s is short for %I VMs; allow at "
                "least 15 minutes per 1000 VMs (%s)%s", lua_tostring(L, -2),
                (LUAI_UACINT)nodes, lua_tostring(L, -1),
                given < SERVICE_MIN ? "; the service refuses values below "
                                      "PT5M" : "");
      azb_path_pop(&v);
      lua_pop(L, 2);
    }
  }
  lua_pushvalue(L, v.warnings);
  lua_setfield(L, result, "warnings");
  lua_pushvalue(L, notes);
  lua_setfield(L, result, "notes");
  lua_pushvalue(L, result);
  return 1;
}

/* }====================================================== */


static const luaL_Reg plan_funcs[] = {
  { "plan", plan },
  { "parse_duration", parse_duration },
  { "format_duration", format_duration },
  { NULL, NULL }
};

void azb_plan_open(lua_State *L) {
  luaL_setfuncs(L, plan_funcs, 0);
}
