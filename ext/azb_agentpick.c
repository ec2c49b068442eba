/*
** azb_agentpick.c: choosing the node agent SKU for an image. Facts in
** (the account's supported images, and what ARM says of a custom image),
** one SKU and the reason out. A marketplace image is looked up in the
** supported images; a custom image is judged by its definition's
** identifier, then by the provenance azbatch records when it publishes a
** version, then by its OS type and the one release its names point to.
*/
#include <string.h>

#include "azb.h"

#define AGENT_FIELD  "pool.virtualMachineConfiguration.nodeAgentSKUId"
#define NAMED_MAX    12     /* candidates named in a message */
#define QUOTE_LEN    160    /* bytes of a fact shown in a message */
#define LIST_MAX     100000 /* entries of a list read (far more than real) */

enum { OS_UNKNOWN, OS_LINUX, OS_WINDOWS };

/* One entry of GET /supportedimages, as spans into the facts. */
typedef struct entry {
  azb_span sku, pub, offer, isku;
  int os, arm, verified;
} entry;

typedef struct pick {
  lua_State *L;
  entry *e;
  size_t ne;
  int listed;                       /* supported_images was given */
  int kind;
  azb_span pub, offer, sku;         /* a marketplace image */
  int os, arm;                      /* a custom image's, from ARM */
  azb_span idpub, idoffer, idsku;   /* the definition's identifier */
  azb_span defname, imgname;
  azb_span tag_agent, tag_market;   /* azbatch provenance tags */
  const char *tag_where;            /* whose tags they are */
} pick;


/*
** {======================================================
** Spans (pure)
** =======================================================
*/

static int lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int isdigit_(int c) { return c >= '0' && c <= '9'; }

static int span_ieq(azb_span a, azb_span b) {
  if (a.n != b.n)
    return 0;
  for (size_t i = 0; i < a.n; i++)
    if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
      return 0;
  return 1;
}

static int span_is(azb_span a, const char *s) {
  azb_span b;
  b.p = s;
  b.n = strlen(s);
  return a.p != NULL && span_ieq(a, b);
}

/* Does s contain word, ignoring case? */
static int span_has(azb_span s, const char *word) {
  size_t n = strlen(word);
  if (s.p == NULL || n == 0 || s.n < n)
    return 0;
  for (size_t i = 0; i + n <= s.n; i++) {
    size_t j = 0;
    while (j < n && lower((unsigned char)s.p[i + j]) == (unsigned char)word[j])
      j++;
    if (j == n)
      return 1;
  }
  return 0;
}

static int span_prefix(azb_span s, const char *prefix) {
  size_t n = strlen(prefix);
  azb_span head;
  if (s.p == NULL || s.n < n)
    return 0;
  head.p = s.p;
  head.n = n;
  return span_is(head, prefix);
}

static int os_of_sku(azb_span sku) {
  return span_prefix(sku, "batch.node.windows") ? OS_WINDOWS : OS_LINUX;
}

static int is_arm(azb_span s) {
  return span_has(s, "arm64") || span_has(s, "aarch64");
}

/*
** "batch.node.<distro> <version>[ ...]": the distro and version spans,
** or 0 for another shape.
*/
static int sku_parts(azb_span sku, azb_span *distro, azb_span *ver) {
  static const char prefix[] = "batch.node.";
  size_t i = sizeof prefix - 1, j;
  if (!span_prefix(sku, prefix))
    return 0;
  for (j = i; j < sku.n && sku.p[j] != ' '; j++)
    ;
  distro->p = sku.p + i;
  distro->n = j - i;
  if (distro->n == 0 || j >= sku.n)
    return 0;
  i = ++j;
  for (; j < sku.n && sku.p[j] != ' '; j++)
    ;
  ver->p = sku.p + i;
  ver->n = j - i;
  return ver->n > 0;
}

/* The maximal run of digits starting at i of s. */
static size_t digit_run(azb_span s, size_t i) {
  size_t j = i;
  while (j < s.n && isdigit_((unsigned char)s.p[j]))
    j++;
  return j - i;
}

static int run_is(azb_span s, size_t i, size_t n, const char *digits,
                  size_t dn) {
  return n == dn && memcmp(s.p + i, digits, dn) == 0;
}

static int all_zero(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != '0')
      return 0;
  return n > 0;
}

static int is_sep(int c) { return c == '.' || c == '_' || c == '-'; }

/*
** Does the text name release 'ver' ("22.04", "9", "2.0")? A release is a
** number standing alone ("rhel-9", "22_04-lts", "ubuntu2204"), never the
** minor part of another ("8.9" does not name 9). A ".0" release may be
** named by its major alone ("mariner-2").
*/
static int has_release(azb_span text, azb_span ver) {
  const char *maj = ver.p, *min = NULL;
  size_t majn = ver.n, minn = 0;
  for (size_t i = 0; i < ver.n; i++) {
    if (ver.p[i] == '.' && min == NULL) {
      majn = i;
      min = ver.p + i + 1;
      minn = ver.n - i - 1;
    }
    else if (!isdigit_((unsigned char)ver.p[i]))
      return 0;   /* not a release number */
  }
  if (majn == 0 || (min != NULL && minn == 0) || text.p == NULL)
    return 0;
  for (size_t i = 0; i < text.n; i++) {
    size_t r, j;
    if (!isdigit_((unsigned char)text.p[i]) ||
        (i > 0 && isdigit_((unsigned char)text.p[i - 1])))
      continue;
    r = digit_run(text, i);
    j = i + r;
    if (i >= 2 && (text.p[i - 1] == '.' || text.p[i - 1] == '_') &&
        isdigit_((unsigned char)text.p[i - 2]))
      continue;   /* the minor part of another release */
    if (min == NULL) {
      if (run_is(text, i, r, maj, majn))
        return 1;
      continue;
    }
    if (r == majn + minn && memcmp(text.p + i, maj, majn) == 0 &&
        memcmp(text.p + i + majn, min, minn) == 0)
      return 1;   /* "2204" */
    if (run_is(text, i, r, maj, majn)) {
      if (j + 1 < text.n && is_sep((unsigned char)text.p[j]) &&
          isdigit_((unsigned char)text.p[j + 1]) &&
          run_is(text, j + 1, digit_run(text, j + 1), min, minn))
        return 1;   /* "22.04", "22_04", "22-04" */
      if (all_zero(min, minn) &&
          !(j + 1 < text.n && (text.p[j] == '.' || text.p[j] == '_') &&
            isdigit_((unsigned char)text.p[j + 1])))
        return 1;   /* "mariner-2" for 2.0 */
    }
  }
  return 0;
}

/* Words that name a distro in image names, by the agent's distro name. */
static const char *const distro_words[][6] = {
  { "ubuntu", "ubuntu", NULL },
  { "el", "rhel", "redhat", "almalinux", "rocky", "centos" },
  { "centos", "centos", NULL },
  { "debian", "debian", NULL },
  { "mariner", "mariner", NULL },
  { "azurelinux", "azurelinux", "azure-linux", NULL },
  { "sles", "sles", "suse", NULL },
  { "opensuse", "opensuse", NULL },
};

static const char *const ubuntu_names[][2] = {
  { "24.04", "noble" }, { "22.04", "jammy" }, { "20.04", "focal" },
  { "18.04", "bionic" }, { "16.04", "xenial" }
};

#define NTEXT 5

static int texts_have(const azb_span *t, const char *word) {
  for (int i = 0; i < NTEXT; i++)
    if (span_has(t[i], word))
      return 1;
  return 0;
}

/* Do the names of the image point to the agent 'sku'? */
static int names_fit(const azb_span *t, azb_span sku) {
  azb_span distro, ver;
  int named = 0, dn = (int)(sizeof distro_words / sizeof distro_words[0]);
  int i;
  if (!sku_parts(sku, &distro, &ver))
    return 0;
  for (i = 0; i < dn; i++)
    if (span_is(distro, distro_words[i][0])) {
      for (int w = 1; w < 6 && distro_words[i][w] != NULL; w++)
        named |= texts_have(t, distro_words[i][w]);
      break;
    }
  if (i == dn) {   /* another distro: its own name, when long enough */
    char word[32];
    if (distro.n < 3 || distro.n >= sizeof word)
      return 0;
    for (size_t k = 0; k < distro.n; k++)
      word[k] = (char)lower((unsigned char)distro.p[k]);
    word[distro.n] = '\0';
    named = texts_have(t, word);
  }
  if (!named)
    return 0;
  for (int k = 0; k < NTEXT; k++)
    if (has_release(t[k], ver))
      return 1;
  if (span_is(distro, "ubuntu"))
    for (size_t k = 0; k < sizeof ubuntu_names / sizeof ubuntu_names[0]; k++)
      if (span_is(ver, ubuntu_names[k][0]) && texts_have(t, ubuntu_names[k][1]))
        return 1;
  return 0;
}

/* }====================================================== */


/*
** {======================================================
** Reading the facts
** =======================================================
*/

static void read_entries(pick *p, int t) {
  lua_State *L = p->L;
  size_t n = lua_rawlen(L, t);
  if (n > LIST_MAX)
    n = LIST_MAX;
  p->ne = 0;
  p->e = (entry *)lua_newuserdatauv(L, (n > 0 ? n : 1) * sizeof(entry), 0);
  for (size_t i = 1; i <= n; i++) {
    entry *e = &p->e[p->ne];
    int top = lua_gettop(L), ir;
    azb_span os;
    if (lua_rawgeti(L, t, (lua_Integer)i) != LUA_TTABLE) {
      lua_settop(L, top);
      continue;
    }
    e->sku = azb_facts_str(L, top + 1, "nodeAgentSKUId");
    if (e->sku.n == 0) {
      lua_settop(L, top);
      continue;
    }
    ir = azb_facts_sub(L, top + 1, "imageReference");
    e->pub = azb_facts_str(L, ir, "publisher");
    e->offer = azb_facts_str(L, ir, "offer");
    e->isku = azb_facts_str(L, ir, "sku");
    os = azb_facts_str(L, top + 1, "osType");
    e->os = span_is(os, "windows") ? OS_WINDOWS :
            span_is(os, "linux") ? OS_LINUX : os_of_sku(e->sku);
    e->arm = is_arm(e->pub) || is_arm(e->offer) || is_arm(e->isku) ||
             is_arm(e->sku);
    e->verified = span_is(azb_facts_str(L, top + 1, "verificationType"), "verified");
    p->ne++;
    lua_settop(L, top);
  }
}

/* The last segment of an id ("/.../images/ubuntu-2204" -> "ubuntu-2204"). */
static azb_span last_segment(azb_span id) {
  azb_span s = id;
  if (id.p == NULL)
    return s;
  for (size_t i = id.n; i > 0; i--)
    if (id.p[i - 1] == '/') {
      s.p = id.p + i;
      s.n = id.n - i;
      break;
    }
  return s;
}

static int os_value(azb_span s) {
  return span_is(s, "windows") ? OS_WINDOWS :
         span_is(s, "linux") ? OS_LINUX : OS_UNKNOWN;
}

static void read_tags(pick *p, int res, const char *where) {
  lua_State *L = p->L;
  int tags = azb_facts_sub(L, res, "tags");
  if (tags == 0)
    return;
  p->tag_agent = azb_facts_str(L, tags, "azbatch.nodeAgentSKUId");
  p->tag_market = azb_facts_str(L, tags, "azbatch.marketplace");
  p->tag_where = where;
  lua_pop(L, 1);
}

static void read_facts(pick *p) {
  lua_State *L = p->L;
  int img, si, def, ver, mi;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_checkstack(L, 24, NULL);
  img = azb_facts_table(L, "image", 0);
  p->kind = azb_facts_image_kind(L, img);
  p->pub = azb_facts_str(L, img, "publisher");
  p->offer = azb_facts_str(L, img, "offer");
  p->sku = azb_facts_str(L, img, "sku");
  p->imgname = azb_facts_str(L, img, "image");
  if (p->imgname.p == NULL)
    p->imgname = azb_facts_str(L, img, "name");
  si = azb_facts_table(L, "supported_images", 1);
  def = azb_facts_table(L, "image_definition", 1);
  ver = azb_facts_table(L, "image_version", 1);
  mi = azb_facts_table(L, "managed_image", 1);
  if (si != 0) {
    p->listed = 1;
    read_entries(p, si);   /* the userdata stays on the stack */
  }
  if (p->kind == K_MANAGED) {
    int props = azb_facts_sub(L, mi, "properties");
    int sp = azb_facts_sub(L, props, "storageProfile");
    int od = azb_facts_sub(L, sp, "osDisk");
    p->os = os_value(azb_facts_str(L, od, "osType"));
    if (mi != 0) {
      azb_span name = azb_facts_str(L, mi, "name");
      if (name.p != NULL)
        p->imgname = name;
      read_tags(p, mi, "managed image's");
    }
  }
  else if (p->kind != K_MARKET && p->kind != K_VHD) {
    int props = azb_facts_sub(L, def, "properties");
    int ident = azb_facts_sub(L, props, "identifier");
    p->os = os_value(azb_facts_str(L, props, "osType"));
    p->arm = span_is(azb_facts_str(L, props, "architecture"), "arm64");
    p->idpub = azb_facts_str(L, ident, "publisher");
    p->idoffer = azb_facts_str(L, ident, "offer");
    p->idsku = azb_facts_str(L, ident, "sku");
    p->defname = azb_facts_str(L, def, "name");
    if (p->defname.p == NULL)
      p->defname = last_segment(azb_facts_str(L, def, "id"));
    read_tags(p, ver, "version's");
  }
}

/* }====================================================== */


/*
** {======================================================
** Choosing
** =======================================================
*/

/* Push s cleaned for a message and quoted with single quotes. */
static const char *push_q(lua_State *L, azb_span s) {
  char buf[QUOTE_LEN];
  size_t n = azb_text_clean(s.p != NULL ? s.p : "", s.n, buf, sizeof buf);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '\'');
  for (size_t i = 0; i < n; i++) {
    if (buf[i] == '\'' || buf[i] == '\\')
      luaL_addchar(&b, '\\');
    luaL_addchar(&b, buf[i]);
  }
  luaL_addchar(&b, '\'');
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Push 'a:b:c' cleaned and quoted. */
static const char *push_urn(lua_State *L, azb_span a, azb_span b, azb_span c) {
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  luaL_addlstring(&buf, a.p != NULL ? a.p : "", a.n);
  luaL_addchar(&buf, ':');
  luaL_addlstring(&buf, b.p != NULL ? b.p : "", b.n);
  luaL_addchar(&buf, ':');
  luaL_addlstring(&buf, c.p != NULL ? c.p : "", c.n);
  luaL_pushresult(&buf);
  {
    azb_span all;
    all.p = lua_tolstring(L, -1, &all.n);
    push_q(L, all);
  }
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

static int fits(const entry *e, int os, int arch) {
  return (os == OS_UNKNOWN || e->os == os) && (arch < 0 || e->arm == arch);
}

/*
** The entry for image pub:offer:sku among those that fit os; -1 when
** none, -2 when entries name different agents (verified ones first).
*/
static int match_image(const pick *p, azb_span pub, azb_span offer,
                       azb_span sku, int os) {
  int found = -1, verified = -1, clash = 0, vclash = 0;
  if (pub.n == 0 || offer.n == 0 || sku.n == 0)
    return -1;
  for (size_t i = 0; i < p->ne; i++) {
    const entry *e = &p->e[i];
    if (!fits(e, os, -1) || !span_ieq(e->pub, pub) ||
        !span_ieq(e->offer, offer) || !span_ieq(e->isku, sku))
      continue;
    if (found < 0)
      found = (int)i;
    else if (!span_ieq(p->e[found].sku, e->sku))
      clash = 1;
    if (e->verified) {
      if (verified < 0)
        verified = (int)i;
      else if (!span_ieq(p->e[verified].sku, e->sku))
        vclash = 1;
    }
  }
  if (!clash)
    return found;
  return (verified >= 0 && !vclash) ? verified : -2;
}

/* Index of the first entry with agent 'sku' that fits os, or -1. */
static int find_sku(const pick *p, azb_span sku, int os) {
  for (size_t i = 0; i < p->ne; i++)
    if (fits(&p->e[i], os, -1) && span_ieq(p->e[i].sku, sku))
      return (int)i;
  return -1;
}

/* Is entry i the first with its agent among those that fit? */
static int first_of_sku(const pick *p, size_t i, int os, int arch) {
  for (size_t j = 0; j < i; j++)
    if (fits(&p->e[j], os, arch) && span_ieq(p->e[j].sku, p->e[i].sku))
      return 0;
  return 1;
}

/*
** Push the candidates (distinct agents that fit os and arch) as an array,
** and a message fragment naming them; returns how many.
*/
static size_t push_candidates(const pick *p, int os, int arch) {
  lua_State *L = p->L;
  luaL_Buffer b;
  size_t n = 0;
  int arr;
  lua_newtable(L);
  arr = lua_gettop(L);
  if (luaL_getmetatable(L, AZB_ARRAY) == LUA_TTABLE)
    lua_setmetatable(L, arr);
  else
    lua_pop(L, 1);
  for (size_t i = 0; i < p->ne; i++)
    if (fits(&p->e[i], os, arch) && first_of_sku(p, i, os, arch)) {
      lua_pushlstring(L, p->e[i].sku.p, p->e[i].sku.n);
      lua_rawseti(L, arr, (lua_Integer)++n);
    }
  luaL_buffinit(L, &b);
  for (size_t i = 1; i <= n && i <= NAMED_MAX; i++) {
    azb_span s;
    if (i > 1)
      luaL_addstring(&b, ", ");
    lua_rawgeti(L, arr, (lua_Integer)i);
    s.p = lua_tolstring(L, -1, &s.n);
    push_q(L, s);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  if (n > NAMED_MAX)
    lua_pushfstring(L, " (and %d more)", (int)(n - NAMED_MAX));
  else
    lua_pushliteral(L, "");
  luaL_addvalue(&b);
  if (n == 0)
    luaL_addstring(&b, "none");
  luaL_pushresult(&b);
  return n;
}

static const char *os_word(int os) {
  return os == OS_WINDOWS ? "Windows" : os == OS_LINUX ? "Linux" : "any OS";
}

/* Push what the image is, for messages. */
static void push_what(const pick *p) {
  lua_State *L = p->L;
  switch (p->kind) {
    case K_MARKET:
      push_urn(L, p->pub, p->offer, p->sku);
      lua_pushfstring(L, "the marketplace image %s", lua_tostring(L, -1));
      break;
    case K_MANAGED:
      push_q(L, p->imgname);
      lua_pushfstring(L, "the managed image %s", lua_tostring(L, -1));
      break;
    case K_VHD:
      lua_pushliteral(L, "a VHD blob");
      lua_pushliteral(L, "a VHD blob");
      break;
    default:
      push_q(L, p->defname.p != NULL ? p->defname : p->imgname);
      lua_pushfstring(L, "the image definition %s", lua_tostring(L, -1));
      break;
  }
  lua_remove(L, -2);
}

/* nil, message, {kind="validation", field=, candidates=}; 'why' on top. */
static int fail(const pick *p, int os, int arch) {
  lua_State *L = p->L;
  int why = lua_gettop(L);
  push_what(p);
  push_candidates(p, os, arch);
  /* stack: why, what, candidates, named */
  azb_fail(L, "validation", AGENT_FIELD, AGENT_FIELD ": cannot choose a node "
           "agent for %s: %s; candidates for %s%s: %s",
           lua_tostring(L, why + 1), lua_tostring(L, why),
           os_word(os), os == OS_UNKNOWN ? "" : arch > 0 ? " arm64" : " x64",
           lua_tostring(L, why + 3));
  lua_pushvalue(L, why + 2);
  lua_setfield(L, -2, "candidates");
  return 3;
}

static int chose(const pick *p, azb_span sku) {
  lua_State *L = p->L;
  int reason = lua_gettop(L);
  lua_pushlstring(L, sku.p, sku.n);
  lua_pushvalue(L, reason);
  return 2;
}

/* "publisher:offer:sku" into three spans; 0 for another shape. */
static int split_urn(azb_span s, azb_span part[3]) {
  size_t start = 0;
  int np = 0;
  if (s.p == NULL)
    return 0;
  for (size_t i = 0; i <= s.n; i++)
    if (i == s.n || s.p[i] == ':') {
      if (np == 3 || i == start)
        return 0;
      part[np].p = s.p + start;
      part[np].n = i - start;
      np++;
      start = i + 1;
    }
  return np == 3;
}

static int choose_marketplace(pick *p) {
  lua_State *L = p->L;
  int i = match_image(p, p->pub, p->offer, p->sku, OS_UNKNOWN);
  if (i >= 0) {
    push_urn(L, p->pub, p->offer, p->sku);
    lua_pushfstring(L, "the account's supported images pair %s with it",
                    lua_tostring(L, -1));
    return chose(p, p->e[i].sku);
  }
  push_urn(L, p->pub, p->offer, p->sku);
  lua_pushfstring(L, i == -2 ? "the supported images pair %s with more than "
                  "one agent" : "%s is not among the account's supported "
                  "images", lua_tostring(L, -1));
  lua_remove(L, -2);
  return fail(p, OS_UNKNOWN, -1);
}

static int choose_custom(pick *p) {
  lua_State *L = p->L;
  azb_span t[NTEXT];
  int i, os = p->os, arch = os == OS_UNKNOWN ? -1 : p->arm;
  /* (1) the definition's identifier names a supported marketplace image */
  i = match_image(p, p->idpub, p->idoffer, p->idsku, os);
  if (i >= 0) {
    push_urn(L, p->idpub, p->idoffer, p->idsku);
    lua_pushfstring(L, "from the image definition's identifier %s",
                    lua_tostring(L, -1));
    return chose(p, p->e[i].sku);
  }
  /* (2) the provenance azbatch records when it publishes a version */
  if (p->tag_agent.n > 0 && (i = find_sku(p, p->tag_agent, os)) >= 0) {
    lua_pushfstring(L, "from the %s tag azbatch.nodeAgentSKUId", p->tag_where);
    return chose(p, p->e[i].sku);
  }
  if (p->tag_market.n > 0) {
    azb_span part[3];
    if (split_urn(p->tag_market, part) &&
        (i = match_image(p, part[0], part[1], part[2], os)) >= 0) {
      push_q(L, p->tag_market);
      lua_pushfstring(L, "from the %s tag azbatch.marketplace %s",
                      p->tag_where, lua_tostring(L, -1));
      return chose(p, p->e[i].sku);
    }
  }
  /* (3) the OS type and the one release the names point to */
  t[0] = p->idpub;
  t[1] = p->idoffer;
  t[2] = p->idsku;
  t[3] = p->defname;
  t[4] = p->imgname;
  if (os != OS_UNKNOWN) {
    int found = -1, count = 0;
    for (size_t k = 0; k < p->ne; k++) {
      if (!fits(&p->e[k], os, arch) || !first_of_sku(p, k, os, arch))
        continue;
      if (os == OS_WINDOWS || names_fit(t, p->e[k].sku)) {
        if (found < 0)
          found = (int)k;
        count++;
      }
    }
    if (count == 1 && os == OS_WINDOWS) {
      lua_pushfstring(L, "the only supported %s agent, and the image's "
                      "osType is Windows", arch > 0 ? "Windows arm64" :
                      "Windows");
      return chose(p, p->e[found].sku);
    }
    if (count == 1) {
      push_q(L, p->e[found].sku);
      lua_pushfstring(L, "the image's osType is Linux and its identifier or "
                      "name names the release of %s, the only supported "
                      "agent that fits", lua_tostring(L, -1));
      return chose(p, p->e[found].sku);
    }
  }
  /* none: say what was looked at */
  {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (p->idpub.n > 0 || p->idoffer.n > 0 || p->idsku.n > 0) {
      push_urn(L, p->idpub, p->idoffer, p->idsku);
      lua_pushfstring(L, "its identifier %s is not a supported image",
                      lua_tostring(L, -1));
      lua_remove(L, -2);
    }
    else
      lua_pushliteral(L, "no image definition was read");
    luaL_addvalue(&b);
    if (p->tag_agent.n > 0) {
      push_q(L, p->tag_agent);
      lua_pushfstring(L, ", its tag azbatch.nodeAgentSKUId %s is not "
                      "supported", lua_tostring(L, -1));
      lua_remove(L, -2);
      luaL_addvalue(&b);
    }
    else
      luaL_addstring(&b, ", it has no azbatch provenance tags");
    if (os == OS_UNKNOWN)
      luaL_addstring(&b, " and its OS type is unknown");
    else
      luaL_addstring(&b, " and its names point to no single agent");
    luaL_pushresult(&b);
  }
  return fail(p, os, arch);
}

/*
** core.choose_node_agent(facts) -> sku, reason | fail
** (err.kind = "validation", err.field, err.candidates = {...})
*/
static int choose_node_agent(lua_State *L) {
  pick p;
  memset(&p, 0, sizeof p);
  p.L = L;
  read_facts(&p);
  luaL_checkstack(L, 24, NULL);
  if (p.kind == K_VHD) {
    lua_pushliteral(L, "Batch takes a managed image or a gallery version "
                    "made from the VHD, not the VHD (azbatch image from-vhd)");
    return fail(&p, OS_UNKNOWN, -1);
  }
  if (!p.listed) {
    lua_pushliteral(L, "the account's supported images (facts."
                    "supported_images) were not read");
    return fail(&p, OS_UNKNOWN, -1);
  }
  if (p.kind == K_MARKET)
    return choose_marketplace(&p);
  return choose_custom(&p);
}

/* }====================================================== */


static const luaL_Reg agentpick_funcs[] = {
  { "choose_node_agent", choose_node_agent },
  { NULL, NULL }
};

void azb_agentpick_open(lua_State *L) {
  luaL_setfuncs(L, agentpick_funcs, 0);
}
