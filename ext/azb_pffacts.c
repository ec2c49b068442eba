/*
** azb_pffacts.c: the preflight's facts, read from Lua into a pf. Facts
** come from the network: a mistyped or missing sub-field is unknown,
** never a raise; only a top-level fact of the wrong Lua type is misuse.
** Spans point into strings the facts table anchors. Also what the facts
** say together (the agent the pool ends up with, the image's OS).
*/
#include <string.h>

#include "azb_preflight.h"

#define LIST_MAX        100000         /* entries of a list read */

const char *const azb_pf_fact_names[NFACTS] = {
  "account", "usage", "image_definition", "image_version", "image_versions",
  "managed_image", "vm_size", "supported_images", "storage_account"
};


/*
** {======================================================
** The facts, read into C
** =======================================================
*/

/* The length of the list at t, capped: facts lists are far shorter. */
static size_t list_len(lua_State *L, int t) {
  size_t n = lua_rawlen(L, t);
  return n > LIST_MAX ? LIST_MAX : n;
}

/* t[k] as a whole number in [0, max]; -1 when absent or anything else. */
static long long cfield(lua_State *L, int t, const char *k, long long max) {
  long long r = -1;
  if (t == 0)
    return -1;
  if (azb_facts_get(L, t, k) == LUA_TNUMBER) {
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (isint && v >= 0 && v <= max)
      r = (long long)v;
  }
  lua_pop(L, 1);
  return r;
}

/* t[k]: 1 when true, 0 when false, -1 when absent or not a boolean. */
static int bfield(lua_State *L, int t, const char *k) {
  int r = -1;
  if (t == 0)
    return -1;
  if (azb_facts_get(L, t, k) == LUA_TBOOLEAN)
    r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

static int os_value(azb_span s) {
  return azb_pf_span_is(s, "windows") ? OS_WINDOWS :
         azb_pf_span_is(s, "linux") ? OS_LINUX : OS_UNKNOWN;
}

static void read_unread(pf *c) {
  lua_State *L = c->L;
  int u = azb_facts_table(L, "unread", 1);
  for (int f = 0; u != 0 && f < NFACTS; f++) {
    int t = azb_facts_get(L, u, azb_pf_fact_names[f]);
    unread *r = &c->un[f];
    if (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA) {
      lua_pop(L, 1);
      continue;
    }
    r->present = 1;
    if (t == LUA_TTABLE) {
      int e = lua_gettop(L);
      long long st = cfield(L, e, "status", 999);
      r->status = st > 0 ? st : 0;
      r->code = azb_facts_str(L, e, "code");
      r->message = azb_facts_str(L, e, "message");
    }
    else if (t == LUA_TSTRING)
      r->message.p = lua_tolstring(L, -1, &r->message.n);
    /* the value stays on the stack, anchoring the strings */
  }
}

static void read_image(pf *c, int img) {
  lua_State *L = c->L;
  c->kind = azb_facts_image_kind(L, img);
  c->img_id = azb_facts_str(L, img, "id");
  c->img_sub = azb_pf_id_subscription(c->img_id);
  if (c->img_sub.p == NULL)
    c->img_sub = azb_facts_str(L, img, "subscription");
  c->img_uri = azb_facts_str(L, img, "uri");
  c->img_version = azb_facts_str(L, img, "version");
  c->img_name = azb_facts_str(L, img, "name");
  if (c->img_name.p == NULL)
    c->img_name = azb_facts_str(L, img, "image");
  if ((c->kind == K_GVERSION || c->kind == K_GLATEST) &&
      (azb_pf_span_ends(c->img_id, "/versions/latest") ||
       (c->kind == K_GVERSION && azb_pf_span_is(c->img_version, "latest")))) {
    c->latest_id = 1;
    c->kind = K_GLATEST;
  }
}

static void read_pool(pf *c, int pool) {
  lua_State *L = c->L;
  int vmc, od, uris;
  c->autoscale = bfield(L, pool, "enableAutoScale") == 1;
  c->ded = cfield(L, pool, "targetDedicatedNodes", COUNT_MAX);
  c->low = cfield(L, pool, "targetLowPriorityNodes", COUNT_MAX);
  if (c->ded < 0)
    c->ded = 0;
  if (c->low < 0)
    c->low = 0;
  c->formula = azb_facts_str(L, pool, "autoScaleFormula");
  c->resize_given = azb_facts_get(L, pool, "resizeTimeout") != LUA_TNIL;
  lua_pop(L, 1);
  c->resize = azb_facts_str(L, pool, "resizeTimeout");
  c->vmsize = azb_facts_str(L, pool, "vmSize");
  vmc = azb_facts_sub(L, pool, "virtualMachineConfiguration");
  c->agent = azb_facts_str(L, vmc, "nodeAgentSKUId");
  if (c->agent.n == 0)
    c->agent.p = NULL;
  od = azb_facts_sub(L, vmc, "osDisk");
  uris = azb_facts_sub(L, od, "imageUris");
  if (uris != 0 && lua_rawlen(L, uris) > 0) {
    c->legacy_vhd = 1;
    if (lua_rawgeti(L, uris, 1) == LUA_TSTRING)
      c->vhd_uri.p = lua_tolstring(L, -1, &c->vhd_uri.n);
  }
}

static void read_account(pf *c, int acct) {
  lua_State *L = c->L;
  int props, fams, modes;
  c->q_ded = c->q_low = c->q_pools = c->q_fam = -1;
  if (acct == 0)
    return;
  c->acct = 1;
  c->acct_id = azb_facts_str(L, acct, "id");
  c->acct_sub = azb_pf_id_subscription(c->acct_id);
  c->acct_name = azb_facts_str(L, acct, "name");
  if (c->acct_name.p == NULL)
    c->acct_name = azb_pf_last_segment(c->acct_id);
  c->acct_loc = azb_facts_str(L, acct, "location");
  if (c->acct_loc.n == 0)
    c->acct_loc.p = NULL;
  props = azb_facts_sub(L, acct, "properties");
  c->acct_mode = azb_facts_str(L, props, "poolAllocationMode");
  c->q_ded = cfield(L, props, "dedicatedCoreQuota", COUNT_MAX);
  c->q_low = cfield(L, props, "lowPriorityCoreQuota", COUNT_MAX);
  c->q_pools = cfield(L, props, "poolQuota", COUNT_MAX);
  c->fam_enforced = bfield(L, props, "dedicatedCoreQuotaPerVMFamilyEnforced")
                    == 1;
  fams = azb_facts_sub(L, props, "dedicatedCoreQuotaPerVMFamily");
  if (fams != 0 && c->vs_family.p != NULL) {
    size_t n = list_len(L, fams);
    for (size_t i = 1; i <= n; i++) {
      if (lua_rawgeti(L, fams, (lua_Integer)i) == LUA_TTABLE &&
          azb_pf_span_ieq(azb_facts_str(L, lua_gettop(L), "name"), c->vs_family))
        c->q_fam = cfield(L, lua_gettop(L), "coreQuota", COUNT_MAX);
      lua_pop(L, 1);
      if (c->q_fam >= 0)
        break;
    }
  }
  modes = azb_facts_sub(L, props, "allowedAuthenticationModes");
  if (modes != 0 && list_len(L, modes) > 0) {
    size_t n = list_len(L, modes);
    c->modes_known = 1;
    for (size_t i = 1; i <= n; i++) {
      azb_span m = { NULL, 0 };
      if (lua_rawgeti(L, modes, (lua_Integer)i) == LUA_TSTRING)
        m.p = lua_tolstring(L, -1, &m.n);
      c->mode_shared |= azb_pf_span_is(m, "SharedKey");
      c->mode_aad |= azb_pf_span_is(m, "AAD");
      lua_pop(L, 1);
    }
  }
}

static void read_usage(pf *c, int u) {
  lua_State *L = c->L;
  int fam;
  c->u_pools = c->u_ded = c->u_low = c->u_fam = -1;
  if (u == 0)
    return;
  c->usage = 1;
  c->u_pools = cfield(L, u, "pools", COUNT_MAX);
  c->u_ded = cfield(L, u, "dedicatedCores", COUNT_MAX);
  c->u_low = cfield(L, u, "lowPriorityCores", COUNT_MAX);
  fam = azb_facts_sub(L, u, "dedicatedCoresByFamily");
  if (fam != 0 && c->vs_family.p != NULL) {
    /* keys as ARM spells the family; look for it ignoring case */
    lua_pushnil(L);
    while (lua_next(L, fam) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        azb_span k;
        k.p = lua_tolstring(L, -2, &k.n);
        if (azb_pf_span_ieq(k, c->vs_family) &&
            lua_type(L, -1) == LUA_TNUMBER) {
          int isint;
          lua_Integer v = lua_tointegerx(L, -1, &isint);
          if (isint && v >= 0 && v <= COUNT_MAX)
            c->u_fam = (long long)v;
        }
      }
      lua_pop(L, 1);
    }
  }
}

static void read_vmsize(pf *c, int vs) {
  lua_State *L = c->L;
  int caps;
  c->vcpus = -1;
  if (vs == 0)
    return;
  c->vs = 1;
  c->vs_name = azb_facts_str(L, vs, "name");
  c->vs_family = azb_facts_str(L, vs, "family");
  caps = azb_facts_sub(L, vs, "capabilities");
  if (caps != 0) {
    size_t n = list_len(L, caps);
    for (size_t i = 1; i <= n; i++) {
      int e;
      azb_span name, value;
      if (lua_rawgeti(L, caps, (lua_Integer)i) != LUA_TTABLE) {
        lua_pop(L, 1);
        continue;
      }
      e = lua_gettop(L);
      name = azb_facts_str(L, e, "name");
      value = azb_facts_str(L, e, "value");
      if (azb_pf_span_is(name, "vCPUs")) {
        double v;
        if (value.p != NULL && azb_pf_number_literal(value.p, value.n, &v) &&
            v >= 1 && v <= 65536 && (double)(long long)v == v)
          c->vcpus = (long long)v;
        else
          c->vcpus = cfield(L, e, "value", 65536);
        if (c->vcpus == 0)
          c->vcpus = -1;
      }
      else if (azb_pf_span_is(name, "HyperVGenerations") && value.p != NULL) {
        size_t s = 0;
        c->gens_known = 1;
        for (size_t k = 0; k <= value.n; k++)
          if (k == value.n || value.p[k] == ',') {
            const char *g = value.p + s;
            size_t gn = k - s;
            azb_span gs;
            azb_pf_trim(&g, &gn);
            gs.p = g;
            gs.n = gn;
            c->gen_v1 |= azb_pf_span_is(gs, "V1");
            c->gen_v2 |= azb_pf_span_is(gs, "V2");
            s = k + 1;
          }
      }
      lua_pop(L, 1);
    }
  }
}

static void read_definition(pf *c, int def) {
  lua_State *L = c->L;
  int props;
  if (def == 0)
    return;
  c->def = 1;
  c->def_id = azb_facts_str(L, def, "id");
  c->def_name = azb_facts_str(L, def, "name");
  if (c->def_name.p == NULL)
    c->def_name = azb_pf_last_segment(c->def_id);
  props = azb_facts_sub(L, def, "properties");
  c->def_os = azb_facts_str(L, props, "osType");
  c->def_state = azb_facts_str(L, props, "osState");
  c->def_gen = azb_facts_str(L, props, "hyperVGeneration");
  c->def_eol = azb_facts_str(L, props, "endOfLifeDate");
}

static void read_managed(pf *c, int mi) {
  lua_State *L = c->L;
  int props, sp, od;
  if (mi == 0)
    return;
  c->mi = 1;
  c->mi_id = azb_facts_str(L, mi, "id");
  c->mi_name = azb_facts_str(L, mi, "name");
  if (c->mi_name.p == NULL)
    c->mi_name = azb_pf_last_segment(c->mi_id);
  c->mi_loc = azb_facts_str(L, mi, "location");
  props = azb_facts_sub(L, mi, "properties");
  sp = azb_facts_sub(L, props, "storageProfile");
  od = azb_facts_sub(L, sp, "osDisk");
  c->mi_os = azb_facts_str(L, od, "osType");
  c->mi_state = azb_facts_str(L, od, "osState");
  c->mi_gen = azb_facts_str(L, props, "hyperVGeneration");
}

/* The version table at idx into v (spans anchored by it). */
static void read_version(pf *c, int idx, version *v) {
  lua_State *L = c->L;
  int top = lua_gettop(L), props, pp, regions, rs, summary;
  memset(v, 0, sizeof *v);
  v->replica_count = v->region_replicas = v->progress = -1;
  v->present = 1;
  v->id = azb_facts_str(L, idx, "id");
  v->name = azb_facts_str(L, idx, "name");
  if (v->name.p == NULL)
    v->name = azb_pf_last_segment(v->id);
  props = azb_facts_sub(L, idx, "properties");
  v->failed = azb_pf_span_is(azb_facts_str(L, props, "provisioningState"), "Failed");
  pp = azb_facts_sub(L, props, "publishingProfile");
  v->exclude = bfield(L, pp, "excludeFromLatest") == 1;
  v->eol = azb_facts_str(L, pp, "endOfLifeDate");
  v->replica_count = cfield(L, pp, "replicaCount", COUNT_MAX);
  regions = azb_facts_sub(L, pp, "targetRegions");
  if (regions != 0) {
    size_t n = list_len(L, regions);
    for (size_t i = 1; i <= n; i++) {
      int e;
      azb_span name;
      if (lua_rawgeti(L, regions, (lua_Integer)i) != LUA_TTABLE) {
        lua_pop(L, 1);
        continue;
      }
      e = lua_gettop(L);
      name = azb_facts_str(L, e, "name");
      if (name.n > 0) {
        if (v->nregions < REGIONS_SHOWN)
          v->regions[v->nregions] = name;
        v->nregions++;
        if (!v->in_region && azb_pf_region_eq(name, c->acct_loc)) {
          v->in_region = 1;
          v->region_replicas = cfield(L, e, "regionalReplicaCount",
                                      COUNT_MAX);
          v->region_exclude = bfield(L, e, "excludeFromLatest") == 1;
        }
      }
      lua_pop(L, 1);
    }
  }
  rs = azb_facts_sub(L, props, "replicationStatus");
  if (rs != 0) {
    v->has_status = 1;
    v->aggregated = azb_facts_str(L, rs, "aggregatedState");
    summary = azb_facts_sub(L, rs, "summary");
    if (summary != 0) {
      size_t n = list_len(L, summary);
      for (size_t i = 1; i <= n && !v->has_state; i++) {
        int e;
        if (lua_rawgeti(L, summary, (lua_Integer)i) == LUA_TTABLE) {
          e = lua_gettop(L);
          if (azb_pf_region_eq(azb_facts_str(L, e, "region"), c->acct_loc)) {
            v->has_state = 1;
            v->state = azb_facts_str(L, e, "state");
            v->details = azb_facts_str(L, e, "details");
            v->progress = cfield(L, e, "progress", 100);
          }
        }
        lua_pop(L, 1);
      }
    }
  }
  lua_settop(L, top);
}

/*
** Which version 'latest' resolves to: the highest major.minor.patch not
** excluded from latest (for the whole version or in the account's
** region) and not failed. Leaves the winner's table on the stack (its
** index in *win, or 0).
*/
static void read_versions(pf *c, int list, int *win) {
  lua_State *L = c->L;
  size_t n = list_len(L, list);
  long long best[3] = { -1, -1, -1 };
  lua_Integer besti = 0;
  *win = 0;
  c->versions = 1;
  for (size_t i = 1; i <= n; i++) {
    version v;
    long long sv[3];
    int top = lua_gettop(L);
    if (lua_rawgeti(L, list, (lua_Integer)i) != LUA_TTABLE) {
      lua_settop(L, top);
      continue;
    }
    c->nversions++;
    read_version(c, top + 1, &v);
    if (!azb_pf_parse_semver(v.name, sv))
      c->nother++;
    else if (v.exclude || v.region_exclude) {
      if (c->nexcluded < NAMES_SHOWN)
        c->excluded[c->nexcluded] = v.name;
      c->nexcluded++;
    }
    else if (v.failed)
      c->nfailed++;
    else if (azb_pf_semver_cmp(sv, best) > 0) {
      memcpy(best, sv, sizeof best);
      besti = (lua_Integer)i;
      c->latest = v.name;
    }
    lua_settop(L, top);
  }
  if (besti > 0) {
    lua_rawgeti(L, list, besti);
    *win = lua_gettop(L);
  }
}

/*
** What the supported images say of the agent the pool ends up with and
** of a marketplace image: listed, OS, end of support.
*/
static void read_supported(pf *c, int si, azb_span agent, azb_span pub,
                           azb_span offer, azb_span sku) {
  lua_State *L = c->L;
  size_t n;
  int all_eol = 1, any = 0;
  double latest_eol = 0;
  if (si == 0)
    return;
  c->si = 1;
  n = list_len(L, si);
  for (size_t i = 1; i <= n; i++) {
    int e, ir;
    azb_span esku, eol;
    int top = lua_gettop(L);
    if (lua_rawgeti(L, si, (lua_Integer)i) != LUA_TTABLE) {
      lua_settop(L, top);
      continue;
    }
    e = top + 1;
    esku = azb_facts_str(L, e, "nodeAgentSKUId");
    eol = azb_facts_str(L, e, "batchSupportEndOfLife");
    ir = azb_facts_sub(L, e, "imageReference");
    if (c->kind == K_MARKET && !c->market_listed &&
        azb_pf_span_ieq(azb_facts_str(L, ir, "publisher"), pub) &&
        azb_pf_span_ieq(azb_facts_str(L, ir, "offer"), offer) &&
        azb_pf_span_ieq(azb_facts_str(L, ir, "sku"), sku)) {
      c->market_listed = 1;
      c->market_os = os_value(azb_facts_str(L, e, "osType"));
      c->market_eol = eol;
    }
    if (agent.p != NULL && azb_pf_span_ieq(esku, agent)) {
      double t;
      if (!any)
        c->agent_os = os_value(azb_facts_str(L, e, "osType"));
      any = 1;
      if (eol.p != NULL && azb_pf_parse_time(eol, &t)) {
        if (t > latest_eol)
          latest_eol = t;
      }
      else
        all_eol = 0;
    }
    lua_settop(L, top);
  }
  c->agent_listed = any;
  /* the agent retires when every image it serves does */
  if (any && all_eol) {
    c->agent_eol_known = 1;
    c->agent_eol = latest_eol;
  }
}

static void read_storage(pf *c, int sa) {
  lua_State *L = c->L;
  if (sa == 0)
    return;
  c->sa = 1;
  c->sa_id = azb_facts_str(L, sa, "id");
  c->sa_loc = azb_facts_str(L, sa, "location");
}

/* }====================================================== */


/*
** {======================================================
** Reading them all
** =======================================================
*/

void azb_pf_read(pf *c) {
  lua_State *L = c->L;
  int pool, win = 0;
  azb_span cred;
  if (azb_facts_get(L, 1, "now") != LUA_TNUMBER)
    luaL_argerror(L, 1, lua_pushfstring(L, "facts.now: number expected, "
                  "got %s", luaL_typename(L, -1)));
  c->now = (double)lua_tonumber(L, -1);
  if (!(c->now > -1e13 && c->now < 1e13))
    luaL_argerror(L, 1, "facts.now: finite number of seconds expected");
  lua_pop(L, 1);
  pool = azb_facts_table(L, "pool", 0);
  cred = azb_facts_str(L, 1, "credential");
  if (azb_pf_span_is(cred, "shared_key"))
    c->shared_key = 1;
  else if (!azb_pf_span_is(cred, "entra"))
    luaL_argerror(L, 1, "facts.credential: expected 'shared_key' or "
                  "'entra'");
  c->img_t = azb_facts_table(L, "image", 0);
  read_image(c, c->img_t);
  read_pool(c, pool);
  /* type-check every optional fact before any is used */
  {
    int idx[NFACTS];
    for (int f = 0; f < NFACTS; f++)
      idx[f] = azb_facts_table(L, azb_pf_fact_names[f], 1);
    read_unread(c);
    read_vmsize(c, idx[U_VMSIZE]);
    read_account(c, idx[U_ACCOUNT]);
    read_usage(c, idx[U_USAGE]);
    read_definition(c, idx[U_DEF]);
    read_managed(c, idx[U_MANAGED]);
    read_storage(c, idx[U_STORAGE]);
    if (c->kind == K_GVERSION && idx[U_VERSION] != 0)
      read_version(c, idx[U_VERSION], &c->ver);
    else if (c->kind == K_GLATEST && idx[U_VERSIONS] != 0) {
      read_versions(c, idx[U_VERSIONS], &win);
      if (win != 0) {
        /* the version read alone carries its replication status */
        if (idx[U_VERSION] != 0) {
          version one;
          read_version(c, idx[U_VERSION], &one);
          if (azb_pf_span_ieq(one.name, c->latest))
            win = idx[U_VERSION];
        }
        read_version(c, win, &c->ver);
      }
    }
    c->si_t = idx[U_SUPPORTED];
  }
}

void azb_pf_read_supported(pf *c) {
  lua_State *L = c->L;
  azb_span pub = { NULL, 0 }, offer = { NULL, 0 }, sku = { NULL, 0 };
  if (c->kind == K_MARKET) {
    pub = azb_facts_str(L, c->img_t, "publisher");
    offer = azb_facts_str(L, c->img_t, "offer");
    sku = azb_facts_str(L, c->img_t, "sku");
  }
  read_supported(c, c->si_t, azb_pf_pool_agent(c), pub, offer, sku);
}

/* }====================================================== */


/*
** {======================================================
** What the facts say together
** =======================================================
*/

/* The image's OS from ARM or the supported images; OS_UNKNOWN else. */
int azb_pf_image_os(const pf *c) {
  if (c->kind == K_MANAGED)
    return os_value(c->mi_os);
  if (c->kind == K_MARKET)
    return c->market_listed ? c->market_os : OS_UNKNOWN;
  if (c->kind == K_VHD)
    return OS_UNKNOWN;
  return os_value(c->def_os);
}

/* The agent the pool ends up with: the given one, else the chosen one. */
azb_span azb_pf_pool_agent(const pf *c) {
  return c->agent.p != NULL ? c->agent : c->chosen_sku;
}

/* "V1" or "V2" when the span says so, else NULL. */
static const char *generation(azb_span s) {
  return azb_pf_span_is(s, "V1") ? "V1" : azb_pf_span_is(s, "V2") ? "V2" : NULL;
}

const char *azb_pf_image_generation(const pf *c) {
  if (c->kind == K_MANAGED)
    return generation(c->mi_gen);
  if (c->kind == K_MARKET || c->kind == K_VHD)
    return NULL;
  return generation(c->def_gen);
}

/* Is facts.vm_size the pool's size? */
int azb_pf_vmsize_usable(const pf *c) {
  return c->vs && (c->vmsize.p == NULL || c->vs_name.p == NULL ||
                   azb_pf_span_ieq(c->vmsize, c->vs_name));
}


/* }====================================================== */
