/*
** azb_pfemit.c: the preflight's findings. Each has a stable code, the
** pool field it concerns, a one-line message and a fix; facts in them
** are cleaned and quoted, ids in commands never cut short. A check that
** cannot run says so once per group in a CHECK_SKIPPED warning, with
** why the fact it needed is missing. Only this file builds finding
** tables; the rules build their messages on the stack.
*/
#include <stdarg.h>

#include "azb_preflight.h"

#define QUOTE_LEN       160            /* bytes of a fact in a message */
#define ID_LEN          AZB_TEXT_MAX   /* ids in fixes are never cut short */

static const char *const sev_names[NSEV] = { "error", "warning", "info" };

static const char *const group_names[NGROUPS] = {
  "subscription", "region", "replication", "replica count", "image version",
  "latest version", "image definition", "managed image", "account mode",
  "node agent", "Hyper-V generation", "resize timeout", "quota", "usage",
  "end of life", "storage account"
};


/*
** {======================================================
** Findings
** =======================================================
*/

/* Push s cleaned for one line and quoted with q; returns it. */
static const char *push_q(lua_State *L, azb_span s, char q, size_t max) {
  char buf[ID_LEN];
  size_t n;
  luaL_Buffer b;
  if (max > sizeof buf)
    max = sizeof buf;
  n = azb_text_clean(s.p != NULL ? s.p : "", s.p != NULL ? s.n : 0, buf, max);
  luaL_buffinit(L, &b);
  luaL_addchar(&b, q);
  for (size_t i = 0; i < n; i++) {
    if (buf[i] == q || buf[i] == '\\')
      luaL_addchar(&b, '\\');
    luaL_addchar(&b, buf[i]);
  }
  luaL_addchar(&b, q);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* A value from the facts, for a message: 'cleaned'. */
const char *azb_pf_q(pf *c, azb_span s) {
  return push_q(c->L, s, '\'', QUOTE_LEN);
}

/* An id for a command in a fix: "cleaned", never cut short. */
const char *azb_pf_qid(pf *c, azb_span s) {
  return push_q(c->L, s, '"', ID_LEN);
}

void azb_pf_begin(pf *c) {
  luaL_checkstack(c->L, 24, NULL);
  c->mark = lua_gettop(c->L);
}

/*
** Record a finding. 'msg' and 'fix' (or NULL) are strings on the stack
** above the mark of azb_pf_begin(); the stack goes back to that mark.
*/
void azb_pf_emit(pf *c, int sev, const char *code, const char *field,
                 const char *msg, const char *fix) {
  lua_State *L = c->L;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, sev_names[sev]);
  lua_setfield(L, -2, "severity");
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  if (field != NULL) {
    lua_pushstring(L, field);
    lua_setfield(L, -2, "field");
  }
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  if (fix != NULL) {
    lua_pushstring(L, fix);
    lua_setfield(L, -2, "fix");
  }
  lua_rawseti(L, c->list[sev], (lua_Integer)lua_rawlen(L, c->list[sev]) + 1);
  lua_settop(L, c->mark);
}

/* Push why fact f is missing: "could not be read (HTTP 503 ...)". */
static const char *push_why(pf *c, int f) {
  lua_State *L = c->L;
  const unread *u = &c->un[f];
  luaL_Buffer b;
  if (!u->present)
    return lua_pushfstring(L, "facts.%s was not given", azb_pf_fact_names[f]);
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "facts.%s could not be read", azb_pf_fact_names[f]);
  luaL_addvalue(&b);
  if (u->status > 0 || u->code.n > 0 || u->message.n > 0) {
    luaL_addstring(&b, " (");
    if (u->status > 0) {
      lua_pushfstring(L, "HTTP %d", (int)u->status);
      luaL_addvalue(&b);
    }
    if (u->code.n > 0) {
      int plain = u->code.n <= 64;
      for (size_t i = 0; plain && i < u->code.n; i++)
        plain = azb_pf_isident((unsigned char)u->code.p[i]) ||
                u->code.p[i] == '.';
      if (u->status > 0)
        luaL_addchar(&b, ' ');
      if (plain)   /* "ServerBusy", as the service spells its codes */
        luaL_addlstring(&b, u->code.p, u->code.n);
      else {
        azb_pf_q(c, u->code);
        luaL_addvalue(&b);
      }
    }
    if (u->message.n > 0) {
      if (u->status > 0 || u->code.n > 0)
        luaL_addstring(&b, ": ");
      azb_pf_q(c, u->message);
      luaL_addvalue(&b);
    }
    luaL_addchar(&b, ')');
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/*
** CHECK_SKIPPED (warning), once per group: the group's checks did not
** run because fact f is missing, or for the reason 'why' (a string on
** the stack) when given. Leaves the stack as it was.
*/
void azb_pf_skip(pf *c, int g, const char *field, int f, const char *why) {
  lua_State *L = c->L;
  int saved = c->mark;
  const char *msg, *fix;
  if (c->skipped & (1u << g))
    return;
  c->skipped |= 1u << g;
  azb_pf_begin(c);
  if (why == NULL)
    why = push_why(c, f);
  msg = lua_pushfstring(L, "%s checks skipped: %s", group_names[g], why);
  if (f >= 0 && c->un[f].present && c->un[f].status == 403)
    fix = lua_pushfstring(L, "grant the identity read access to what "
                          "facts.%s reads and run preflight again",
                          azb_pf_fact_names[f]);
  else if (f >= 0)
    fix = lua_pushfstring(L, "read facts.%s and run preflight again",
                          azb_pf_fact_names[f]);
  else
    fix = lua_pushliteral(L, "run preflight again once the facts are "
                          "complete");
  azb_pf_emit(c, SEV_WARNING, "CHECK_SKIPPED", field, msg, fix);
  /* the group, for callers that branch on it */
  lua_rawgeti(L, c->list[SEV_WARNING],
              (lua_Integer)lua_rawlen(L, c->list[SEV_WARNING]));
  lua_pushstring(L, group_names[g]);
  lua_setfield(L, -2, "group");
  lua_pop(L, 1);
  c->mark = saved;
}

/* CHECK_SKIPPED for a reason of our own (printf-like). */
void azb_pf_skip_for(pf *c, int g, const char *field, const char *fmt, ...) {
  lua_State *L = c->L;
  int top;
  va_list ap;
  if (c->skipped & (1u << g))
    return;
  luaL_checkstack(L, 8, NULL);
  top = lua_gettop(L);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  azb_pf_skip(c, g, field, -1, lua_tostring(L, -1));
  lua_settop(L, top);
}

const char *azb_pf_image_field(const pf *c) {
  switch (c->kind) {
    case K_MARKET: return F_IMAGEREF;
    case K_SHARED: return F_SHARED;
    case K_COMMUNITY: return F_COMMUNITY;
    case K_VHD: return c->legacy_vhd ? F_IMAGEURIS : F_IMAGEREF;
    default: return F_VMID;
  }
}

int azb_pf_is_gallery(const pf *c) {
  return c->kind == K_GVERSION || c->kind == K_GLATEST;
}

/* The image definition's id from a version's id ('.../versions/{v}'). */
azb_span azb_pf_definition_id(const pf *c) {
  azb_span def = c->img_id, tail = azb_pf_last_segment(c->img_id);
  static const char seg[] = "/versions/";
  size_t n = sizeof seg - 1;
  if (def.p != NULL && def.n >= tail.n + n) {
    azb_span mid;
    mid.p = def.p + def.n - tail.n - n;
    mid.n = n;
    if (azb_pf_span_is(mid, seg))
      def.n -= tail.n + n;
  }
  return def;
}

/* Push the id of the version the region rules judge, for a command. */
const char *azb_pf_push_version_id(pf *c) {
  lua_State *L = c->L;
  if (c->kind == K_GVERSION && c->img_id.p != NULL)
    return azb_pf_qid(c, c->img_id);
  if (c->ver.id.p != NULL && azb_pf_id_subscription(c->ver.id).p != NULL)
    return azb_pf_qid(c, c->ver.id);
  if (c->img_id.p != NULL) {
    azb_span def = azb_pf_definition_id(c), all;
    const char *s;
    lua_pushlstring(L, def.p, def.n);
    lua_pushliteral(L, "/versions/");
    lua_pushlstring(L, c->ver.name.p != NULL ? c->ver.name.p : "",
                    c->ver.name.n);
    lua_concat(L, 3);
    all.p = lua_tolstring(L, -1, &all.n);
    azb_pf_qid(c, all);
    lua_remove(L, -2);
    s = lua_tostring(L, -1);
    return s;
  }
  return lua_pushliteral(L, "<version id>");
}

/* }====================================================== */
