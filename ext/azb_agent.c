/*
** azb_agent.c: nodeAgentSKUId against the image it must match. The OS
** family of a marketplace image is known from its publisher and offer; a
** custom image's is not (that takes the gallery definition, online).
*/
#include <string.h>

#include "azb.h"

/*
** {======================================================
** nodeAgentSKUId against the image
** =======================================================
*/

enum { OS_UNKNOWN, OS_LINUX, OS_WINDOWS };

static const char AGENT_EXPECTED[] =
  "expected 'batch.node.<os> <version>' such as 'batch.node.ubuntu 22.04'";

static int one_of(const char *s, const char *const *list) {
  for (int i = 0; list[i] != NULL; i++)
    if (azb_strieq(s, list[i]))
      return 1;
  return 0;
}

/*
** The OS family of a marketplace image, where publisher and offer tell it
** (GET /supportedimages is the authority; this is the offline guess).
*/
static int image_os(const char *pub, const char *offer) {
  static const char *const windows_pubs[] = {
    "MicrosoftWindowsServer", "MicrosoftWindowsDesktop", NULL
  };
  static const char *const linux_pubs[] = {
    "Canonical", "Debian", "credativ", "RedHat", "AlmaLinux", "rockylinux",
    "resf", "OpenLogic", "SUSE", "MicrosoftCBLMariner", "Oracle", "kinvolk",
    NULL
  };
  static const char *const linux_offers[] = {
    "ubuntu", "centos", "rhel", "debian", "almalinux", "rocky", "sles",
    "mariner", "azurelinux", "azure-linux", NULL
  };
  if (one_of(pub, windows_pubs) || azb_strihas(offer, "windows"))
    return OS_WINDOWS;
  if (azb_strieq(pub, "microsoft-dsvm") && azb_strihas(offer, "win"))
    return OS_WINDOWS;
  if (one_of(pub, linux_pubs))
    return OS_LINUX;
  for (int i = 0; linux_offers[i] != NULL; i++)
    if (azb_strihas(offer, linux_offers[i]))
      return OS_LINUX;
  return OS_UNKNOWN;
}

/* Find "DD_DD" or "DD.DD" not inside a longer number; write "DD.DD". */
static int find_release(const char *s, int anywhere, char out[6]) {
  for (size_t i = 0; s[i] != '\0'; i++) {
    const char *p = s + i;
    if ((i == 0 || !azb_isdigit((unsigned char)p[-1])) &&
        azb_isdigit((unsigned char)p[0]) && azb_isdigit((unsigned char)p[1]) &&
        (p[2] == '_' || p[2] == '.') &&
        azb_isdigit((unsigned char)p[3]) && azb_isdigit((unsigned char)p[4]) &&
        !azb_isdigit((unsigned char)p[5])) {
      memcpy(out, p, 5);
      out[2] = '.';
      out[5] = '\0';
      return 1;
    }
    if (!anywhere)
      break;
  }
  return 0;
}

/*
** The Ubuntu release of a Canonical-style image: from the offer's
** codename or number (0001-com-ubuntu-server-jammy, ubuntu-24_04-lts),
** else from a sku starting with one (22_04-lts-gen2, 18.04-LTS).
*/
static int ubuntu_release(const char *pub, const char *offer, const char *sku,
                          char out[6]) {
  static const char *const names[][2] = {
    { "noble", "24.04" }, { "jammy", "22.04" }, { "focal", "20.04" },
    { "bionic", "18.04" }, { "xenial", "16.04" }
  };
  if (!azb_strieq(pub, "Canonical") && !azb_strihas(offer, "ubuntu"))
    return 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (azb_strihas(offer, names[i][0])) {
      memcpy(out, names[i][1], 6);
      return 1;
    }
  return find_release(offer, 1, out) || find_release(sku, 0, out);
}

/* "batch.node.<os> <version>": os and version spans, or 0. */
static int parse_agent(const char *a, azb_span *os, azb_span *ver) {
  static const char prefix[] = "batch.node.";
  size_t i = sizeof prefix - 1;
  if (!azb_strnieq(a, prefix, i))
    return 0;
  os->p = a + i;
  while (azb_isalnum((unsigned char)a[i]))
    i++;
  os->n = (size_t)(a + i - os->p);
  if (os->n == 0 || a[i] != ' ')
    return 0;
  ver->p = a + ++i;
  while (azb_isalnum((unsigned char)a[i]) || a[i] == '.' || a[i] == '_' ||
         a[i] == '-')
    i++;
  ver->n = (size_t)(a + i - ver->p);
  return ver->n > 0 && a[i] == '\0';
}

void azb_image_check_agent(azb_vctx *v, int imgidx, const char *agent) {
  lua_State *L = v->L;
  azb_span os, ver;
  const char *pub, *offer, *sku;
  char release[6];
  int imgos, agentwin;
  size_t n;
  if (agent == NULL)
    return;   /* a missing agent is the schema's to report */
  if (!parse_agent(agent, &os, &ver)) {
    azb_text_pushquoted(L, agent, strlen(agent), '"');
    azb_verror_at(v, "nodeAgentSKUId", "%s, got %s", AGENT_EXPECTED,
                  lua_tostring(L, -1));
    lua_pop(L, 1);
    return;
  }
  imgidx = lua_absindex(L, imgidx);
  if (!lua_istable(L, imgidx))
    return;   /* the image had problems of its own */
  pub = azb_image_field(L, imgidx, "publisher", &n);
  offer = azb_image_field(L, imgidx, "offer", &n);
  sku = azb_image_field(L, imgidx, "sku", &n);
  if (pub == NULL || offer == NULL || sku == NULL)
    return;   /* gallery and managed images: nothing to tell offline */
  imgos = image_os(pub, offer);
  agentwin = (os.n == 7 && azb_strnieq(os.p, "windows", 7));
  if (!ubuntu_release(pub, offer, sku, release))
    release[0] = '\0';
  if (imgos == OS_WINDOWS && !agentwin)
    azb_verror_at(v, "nodeAgentSKUId", "'%s' is a Linux agent but the image "
                  "%s:%s:%s is Windows; use 'batch.node.windows amd64'",
                  agent, pub, offer, sku);
  else if (imgos == OS_LINUX && agentwin) {
    if (release[0] != '\0')
      azb_verror_at(v, "nodeAgentSKUId", "'%s' is a Windows agent but the "
                    "image %s:%s:%s is Linux; use 'batch.node.ubuntu %s'",
                    agent, pub, offer, sku, release);
    else
      azb_verror_at(v, "nodeAgentSKUId", "'%s' is a Windows agent but the "
                    "image %s:%s:%s is Linux; use the Linux agent GET "
                    "/supportedimages lists for it", agent, pub, offer, sku);
  }
  else if (release[0] != '\0') {
    /* only a warning: the REST example pairs ubuntu-24_04-lts with 20.04 */
    int isubuntu = (os.n == 6 && azb_strnieq(os.p, "ubuntu", 6));
    if (!isubuntu || ver.n != 5 || memcmp(ver.p, release, 5) != 0) {
      const char *rec = lua_pushfstring(L, "batch.node.ubuntu %s", release);
      azb_path_key(v, "nodeAgentSKUId");
      if (isubuntu)
        azb_vwarn(v, rec, "'%s' is for another Ubuntu release than the "
                  "image %s:%s:%s (Ubuntu %s); check the pair with GET "
                  "/supportedimages", agent, pub, offer, sku, release);
      else
        azb_vwarn(v, rec, "'%s' is not an Ubuntu agent but the image "
                  "%s:%s:%s is Ubuntu %s", agent, pub, offer, sku, release);
      azb_path_pop(v);
      lua_pop(L, 1);
    }
  }
}

/* }====================================================== */



/*
** {======================================================
** Lua functions
** =======================================================
*/

/*
** core.check_node_agent(image, nodeAgentSKUId) -> true, warnings | fail
** Problems are reported at vmConfiguration.imageReference and
** vmConfiguration.nodeAgentSKUId, as inside a vm configuration.
*/
static int check_node_agent(lua_State *L) {
  azb_vctx v;
  const char *agent;
  int t = lua_type(L, 1);
  if (t != LUA_TSTRING && t != LUA_TTABLE)
    return luaL_typeerror(L, 1, "table or string");
  agent = luaL_checkstring(L, 2);
  lua_settop(L, 2);
  azb_vctx_init(&v, L, "vmConfiguration");
  azb_path_key(&v, "imageReference");
  azb_image_check(&v, 1);
  azb_path_pop(&v);
  if (strlen(agent) != lua_rawlen(L, 2)) {   /* an embedded NUL */
    azb_text_pushquoted(L, agent, lua_rawlen(L, 2), '"');
    azb_verror_at(&v, "nodeAgentSKUId", "%s, got %s", AGENT_EXPECTED,
                  lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  else
    azb_image_check_agent(&v, -1, agent);
  if (azb_vctx_fail(&v))
    return 3;
  lua_pushboolean(L, 1);
  lua_pushvalue(L, v.warnings);
  return 2;
}

static const luaL_Reg agent_funcs[] = {
  { "check_node_agent", check_node_agent },
  { NULL, NULL }
};

void azb_agent_open(lua_State *L) {
  luaL_setfuncs(L, agent_funcs, 0);
}

/* }====================================================== */
