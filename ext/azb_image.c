/*
** azb_image.c: image references (marketplace, gallery, managed, shared
** and community gallery) and the ImageReference class. The node agent
** check is in azb_agent.c.
*/
#include <string.h>

#include "azb.h"

/* The REST fields of BatchVmImageReference, in reporting order. */
enum {
  F_PUBLISHER, F_OFFER, F_SKU, F_VERSION,
  F_VMID, F_SHARED, F_COMMUNITY, F_EXACT, NFIELDS
};

static const char *const ref_fields[] = {
  "publisher", "offer", "sku", "version", "virtualMachineImageId",
  "sharedGalleryImageId", "communityGalleryImageId", "exactVersion", NULL
};

static const char URN_EXPECTED[] =
  "expected 'publisher:offer:sku[:version]' or an image resource id "
  "starting with '/'";


/*
** {======================================================
** Message helpers
** =======================================================
*/

/* Record "<why>, got <quoted span>" at the current path extended by key. */
static void span_error(azb_vctx *v, const char *key, const char *why,
                       azb_span where) {
  azb_text_pushquoted(v->L, where.p, where.n, '"');
  if (key != NULL)
    azb_verror_at(v, key, "%s, got %s", why, lua_tostring(v->L, -1));
  else
    azb_verror(v, "%s, got %s", why, lua_tostring(v->L, -1));
  lua_pop(v->L, 1);
}

/* }====================================================== */


/*
** {======================================================
** Validation
** =======================================================
*/

/* Set t[name] = s on the table on top. */
static void setlfield(lua_State *L, const char *name, const char *s,
                      size_t n) {
  lua_pushlstring(L, s, n);
  lua_setfield(L, -2, name);
}

static void setspan(lua_State *L, const char *name, azb_span sp) {
  if (sp.p != NULL)
    setlfield(L, name, sp.p, sp.n);
}

static void newref(lua_State *L, int nrec) {
  lua_createtable(L, 0, nrec);
  luaL_setmetatable(L, AZB_IMAGEREF);
}

/* Which field of the REST object an id of this kind belongs in. */
static int field_for(azb_armkind kind) {
  switch (kind) {
    case AZB_ARM_SHARED_GALLERY: return F_SHARED;
    case AZB_ARM_COMMUNITY_GALLERY: return F_COMMUNITY;
    default: return F_VMID;
  }
}

static int has_space_or_control(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
      return 1;
  return 0;
}

/* An id string in field f (F_VMID...); returns 1 when valid. */
int azb_image_is_vhd(const char *s, size_t n) {
  const char *host = NULL;
  if (n > 8 && azb_strnieq(s, "https://", 8))
    host = s + 8;
  else if (n > 7 && azb_strnieq(s, "http://", 7))
    host = s + 7;
  /* a blob URL (any host: sovereign clouds, Azurite) of a .vhd file */
  return host != NULL && memchr(host, '/', n - (size_t)(host - s)) != NULL &&
         n > 4 && azb_strnieq(s + n - 4, ".vhd", 4);
}

void azb_image_vhd_error(azb_vctx *v, const char *key) {
  const char *msg = "a VHD blob: Batch takes a managed image or a Compute "
    "Gallery image version made from the VHD, not the VHD itself; make one "
    "with 'azbatch image from-vhd --blob URL --name NAME' and use its id";
  if (key != NULL)
    azb_verror_at(v, key, "%s", msg);
  else
    azb_verror(v, "%s", msg);
}

static int check_id(azb_vctx *v, int f, const char *s, size_t n) {
  static const char *const wrong[] = {
    /* F_VMID */
    "expected a gallery image or managed image id ('/subscriptions/.../"
    "providers/Microsoft.Compute/...'); '/SharedGalleries/...' ids go in "
    "sharedGalleryImageId and '/CommunityGalleries/...' ids in "
    "communityGalleryImageId",
    /* F_SHARED */
    "expected '/SharedGalleries/{galleryUniqueName}/Images/{image}"
    "[/Versions/{version}]'",
    /* F_COMMUNITY */
    "expected '/CommunityGalleries/{publicName}/Images/{image}"
    "[/Versions/{version}]'"
  };
  azb_armid id;
  azb_span where;
  const char *why;
  if (azb_image_is_vhd(s, n)) {
    azb_image_vhd_error(v, ref_fields[f]);
    return 0;
  }
  why = azb_armid_parse_ex(s, n, &id, &where);
  if (why != NULL) {
    span_error(v, ref_fields[f], why, where);
    return 0;
  }
  if (field_for(id.kind) != f) {
    where.p = s;
    where.n = n;
    span_error(v, ref_fields[f], wrong[f - F_VMID], where);
    return 0;
  }
  return 1;
}


static int rawgetfield(lua_State *L, int idx, const char *k) {
  lua_pushstring(L, k);
  return lua_rawget(L, idx);
}

/*
** imageReference given as a table of REST fields. Pushes the normalised
** table; the caller replaces it with nil when problems were recorded.
*/
static void check_table(azb_vctx *v, int idx) {
  lua_State *L = v->L;
  const char *val[NFIELDS];
  size_t len[NFIELDS];
  int present[NFIELDS], nmarket = 0, nids = 0, firstid = -1;
  uint64_t meant = 0;
  azb_vcheck_keys(v, idx, AZB_NAMES(ref_fields), &meant);
  /* fixed order, so the first problem reported does not depend on hashing */
  for (int f = 0; f < NFIELDS; f++) {
    int t = rawgetfield(L, idx, ref_fields[f]);
    val[f] = NULL;
    len[f] = 0;
    present[f] = (t != LUA_TNIL);
    if (t == LUA_TSTRING) {
      val[f] = lua_tolstring(L, -1, &len[f]);   /* anchored by the table */
      if (len[f] == 0)
        azb_verror_at(v, ref_fields[f], "must not be empty");
      else if (!azb_utf8_valid(val[f], len[f]))
        azb_verror_at(v, ref_fields[f], "not valid UTF-8");
      else if (f != F_VMID && f != F_SHARED && f != F_COMMUNITY &&
               has_space_or_control(val[f], len[f]))
        azb_verror_at(v, ref_fields[f],
                      "must not contain whitespace or control characters");
    }
    else if (t != LUA_TNIL)
      azb_verror_at(v, ref_fields[f], "expected string, got %s",
                    luaL_typename(L, -1));
    lua_pop(L, 1);
    if (present[f] && f <= F_SKU)
      nmarket++;
    if (present[f] && f >= F_VMID && f <= F_COMMUNITY) {
      if (nids++ == 0)
        firstid = f;
      else
        azb_verror_at(v, ref_fields[f], "cannot be combined with %s; name "
                      "the image one way only", ref_fields[firstid]);
    }
  }
  if (nids == 0 && nmarket == 0) {
    if (meant == 0)   /* else a misspelt field said what was meant */
      azb_vmissing(v, "expected publisher, offer and sku, or one of "
                   "virtualMachineImageId, sharedGalleryImageId or "
                   "communityGalleryImageId");
  }
  else if (nids > 0) {
    for (int f = F_PUBLISHER; f <= F_SKU; f++)
      if (present[f]) {
        azb_verror_at(v, ref_fields[f], "cannot be combined with %s; name "
                      "the image one way only", ref_fields[firstid]);
        break;
      }
    if (present[F_VERSION] && !present[F_PUBLISHER])
      azb_verror_at(v, "version", "Specified property version can only "
                    "have a value when publisher is set; put the version in "
                    "the id ('.../versions/{version}')");
    if (val[firstid] != NULL && len[firstid] > 0)
      check_id(v, firstid, val[firstid], len[firstid]);
  }
  else {
    for (int f = F_PUBLISHER; f <= F_SKU; f++)
      if (!present[f] && !(meant & ((uint64_t)1 << f)))
        azb_vmissing_at(v, ref_fields[f], "required field missing (a "
                        "marketplace image needs publisher, offer and sku)");
  }
  newref(L, NFIELDS);
  for (int f = 0; f < NFIELDS; f++)
    if (val[f] != NULL)
      setlfield(L, ref_fields[f], val[f], len[f]);
}

/* "publisher:offer:sku[:version]", as az batch pool create --image takes */
static void check_urn(azb_vctx *v, const char *s, size_t n) {
  lua_State *L = v->L;
  azb_span part[4];
  int np = 0;
  size_t start = 0;
  if (!azb_utf8_valid(s, n)) {   /* it could not be sent as JSON */
    azb_verror(v, "not valid UTF-8");
    lua_pushnil(L);
    return;
  }
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == ':') {
      if (np == 4 || i == start) {
        np = 0;   /* too many parts, or an empty one */
        break;
      }
      part[np].p = s + start;
      part[np].n = i - start;
      np++;
      start = i + 1;
    }
  }
  if (np < 3 || has_space_or_control(s, n)) {
    azb_span all;
    all.p = s;
    all.n = n;
    span_error(v, NULL, URN_EXPECTED, all);
    lua_pushnil(L);
    return;
  }
  newref(L, 4);
  for (int i = 0; i < 3; i++)
    setlfield(L, ref_fields[i], part[i].p, part[i].n);
  if (np == 4)
    setlfield(L, "version", part[3].p, part[3].n);
  else {   /* az sets what the service would default to */
    lua_pushliteral(L, "latest");
    lua_setfield(L, -2, "version");
  }
}

/* imageReference given as a string: an ARM id or an az-style URN */
static void check_string(azb_vctx *v, int idx) {
  lua_State *L = v->L;
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  azb_armid id;
  azb_span where;
  const char *why;
  if (azb_image_is_vhd(s, n)) {
    azb_image_vhd_error(v, NULL);
    lua_pushnil(L);
    return;
  }
  if (n == 0 || s[0] != '/') {
    check_urn(v, s, n);
    return;
  }
  why = azb_armid_parse_ex(s, n, &id, &where);
  if (why != NULL) {
    span_error(v, NULL, why, where);
    lua_pushnil(L);
    return;
  }
  newref(L, 1);
  setlfield(L, ref_fields[field_for(id.kind)], s, n);
}

int azb_image_is(lua_State *L, int idx) {
  int r = 0;
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, AZB_IMAGEREF);
    r = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return r;
}

void azb_image_check(azb_vctx *v, int idx) {
  lua_State *L = v->L;
  int before = v->nerrors;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 8, "image reference");
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      check_string(v, idx);
      break;
    case LUA_TTABLE:
      check_table(v, idx);
      if (v->nerrors == before && azb_image_is(L, idx)) {
        lua_pop(L, 1);          /* still valid: keep its identity */
        lua_pushvalue(L, idx);
      }
      break;
    default:   /* nil too: the walker reports a missing field itself */
      azb_verror(v, "expected table or string, got %s", luaL_typename(L, idx));
      lua_pushnil(L);
      break;
  }
  if (v->nerrors != before) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* }====================================================== */


/*
** {======================================================
** The ImageReference class
** =======================================================
*/

/* not a reference this module reads (a VHD is preflight's kind only) */
#define K_INVALID K_NKINDS

/* t[k] when it is a string (anchored by t), else NULL */
const char *azb_image_field(lua_State *L, int idx, const char *k, size_t *n) {
  const char *s = NULL;
  if (rawgetfield(L, idx, k) == LUA_TSTRING)
    s = lua_tolstring(L, -1, n);
  lua_pop(L, 1);
  return s;
}

/*
** Kind of the table at idx; for id-named images 'id' is filled and 'src'
** is the id string (anchored by the table).
*/
static int classify(lua_State *L, int idx, azb_armid *id, azb_span *src) {
  memset(id, 0, sizeof *id);
  src->p = NULL;
  src->n = 0;
  for (int f = F_VMID; f <= F_COMMUNITY; f++) {
    size_t n;
    const char *s = azb_image_field(L, idx, ref_fields[f], &n);
    if (s == NULL)
      continue;
    if (azb_armid_parse(s, n, id) != NULL)
      return K_INVALID;
    src->p = s;
    src->n = n;
    switch (id->kind) {
      case AZB_ARM_GALLERY_VERSION:
        return (id->version.n == 6 && azb_strnieq(id->version.p, "latest", 6))
               ? K_GLATEST : K_GVERSION;
      case AZB_ARM_GALLERY_IMAGE: return K_GLATEST;
      case AZB_ARM_MANAGED_IMAGE: return K_MANAGED;
      case AZB_ARM_SHARED_GALLERY: return K_SHARED;
      case AZB_ARM_COMMUNITY_GALLERY: return K_COMMUNITY;
      default: return K_INVALID;
    }
  }
  {
    size_t n;
    if (azb_image_field(L, idx, "publisher", &n) && azb_image_field(L, idx, "offer", &n) &&
        azb_image_field(L, idx, "sku", &n))
      return K_MARKET;
  }
  return K_INVALID;
}

/* Argument 1 must be an ImageReference that still names an image. */
static int check_ref(lua_State *L, azb_armid *id) {
  azb_span src;
  int k;
  if (!lua_istable(L, 1) || !azb_image_is(L, 1))
    luaL_typeerror(L, 1, AZB_IMAGEREF);
  k = classify(L, 1, id, &src);
  if (k == K_INVALID)
    luaL_error(L, "invalid " AZB_IMAGEREF " (modified after creation?)");
  return k;
}

/* Push "publisher:offer:sku:version" of the marketplace table at idx. */
static void push_urn(lua_State *L, int idx) {
  size_t n;
  const char *ver = azb_image_field(L, idx, "version", &n);
  lua_pushfstring(L, "%s:%s:%s:%s", azb_image_field(L, idx, "publisher", &n),
                  azb_image_field(L, idx, "offer", &n), azb_image_field(L, idx, "sku", &n),
                  ver != NULL ? ver : "latest");
}

/* ref:kind() -> "marketplace" | "gallery_version" | "gallery_latest" | ... */
static int ref_kind(lua_State *L) {
  azb_armid id;
  lua_pushstring(L, azb_image_kinds[check_ref(L, &id)]);
  return 1;
}

/* ref:parts() -> {kind=, subscription=, resourceGroup=, gallery=, ...} */
static int ref_parts(lua_State *L) {
  azb_armid id;
  int k = check_ref(L, &id);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, azb_image_kinds[k]);
  lua_setfield(L, -2, "kind");
  if (k == K_MARKET) {
    for (int f = F_PUBLISHER; f <= F_VERSION; f++) {
      size_t n;
      const char *s = azb_image_field(L, 1, ref_fields[f], &n);
      if (s != NULL)
        setlfield(L, ref_fields[f], s, n);
    }
    return 1;
  }
  setspan(L, "subscription", id.subscription);
  setspan(L, "resourceGroup", id.resource_group);
  setspan(L, "gallery", id.gallery);
  setspan(L, "image", id.image);
  setspan(L, "version", id.version);
  setspan(L, "name", id.name);
  return 1;
}

/* ref:is_custom() -> boolean (the portal's "Custom VM image") */
static int ref_is_custom(lua_State *L) {
  azb_armid id;
  lua_pushboolean(L, check_ref(L, &id) != K_MARKET);
  return 1;
}

/* ref:urn() -> "publisher:offer:sku:version" | nil */
static int ref_urn(lua_State *L) {
  azb_armid id;
  if (check_ref(L, &id) == K_MARKET)
    push_urn(L, 1);
  else
    lua_pushnil(L);
  return 1;
}

/* tostring(ref) -> "azbatch.ImageReference(<urn or id>)"; never raises */
static int ref_tostring(lua_State *L) {
  azb_armid id;
  azb_span src;
  int k = lua_istable(L, 1) ? classify(L, 1, &id, &src) : K_INVALID;
  if (k == K_MARKET)
    push_urn(L, 1);
  else if (k == K_INVALID)
    lua_pushliteral(L, "invalid");
  else
    lua_pushlstring(L, src.p, src.n);
  lua_pushfstring(L, AZB_IMAGEREF "(%s)", lua_tostring(L, -1));
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Lua functions
** =======================================================
*/

/* core.image_reference(string | table) -> ImageReference | fail */
static int image_reference(lua_State *L) {
  azb_vctx v;
  int t = lua_type(L, 1);
  if (t != LUA_TSTRING && t != LUA_TTABLE)
    return luaL_typeerror(L, 1, "table or string");
  lua_settop(L, 1);
  azb_vctx_init(&v, L, "imageReference");
  azb_image_check(&v, 1);
  if (azb_vctx_fail(&v))
    return 3;
  return 1;
}

static const luaL_Reg ref_methods[] = {
  { "kind", ref_kind },
  { "parts", ref_parts },
  { "is_custom", ref_is_custom },
  { "urn", ref_urn },
  { NULL, NULL }
};

static const luaL_Reg ref_meta[] = {
  { "__tostring", ref_tostring },
  { NULL, NULL }
};

/* core.is_vhd(s) -> true when s is the URL of a .vhd blob */
static int image_is_vhd(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, azb_image_is_vhd(s, n));
  return 1;
}

static const luaL_Reg image_funcs[] = {
  { "is_vhd", image_is_vhd },
  { "image_reference", image_reference },
  { NULL, NULL }
};

void azb_image_open(lua_State *L) {
  azb_newclass(L, AZB_IMAGEREF, ref_meta, ref_methods);
  /* setmetatable(ref, nil) would make a checked reference a plain table:
  ** refuse it (getmetatable still returns the class) */
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_setfuncs(L, image_funcs, 0);
}

/* }====================================================== */
