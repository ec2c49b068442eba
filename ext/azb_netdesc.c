/*
** azb_netdesc.c: descriptors for NetworkConfiguration (and its ...Update
** twin) of contract 2025-06-01: subnet, endpoint NAT pools with their
** port and NSG rules, public IP configuration. Fields in the contract's
** property order.
*/
#include <string.h>

#include "azb_schema.h"

static const char *const E_vnetscope[] = {"none", "job", NULL};
static const char *const E_protocol[] = {"tcp", "udp", NULL};
static const char *const E_access[] = {"allow", "deny", NULL};
static const char *const E_provision[] = {"batchmanaged", "usermanaged",
                                          "nopublicipaddresses", NULL};
static const char *const E_ipfamily[] = {"IPv4", "IPv6", NULL};

static const char *tostr(azb_vctx *v, int idx, size_t *len) {
  return lua_tolstring(v->L, idx, len);
}

static const char *const S_subnet[] = {
  "subscriptions", "*", "resourceGroups", "*", "providers", "*",
  "virtualNetworks", "*", "subnets", "*", NULL};

static int check_subnet(azb_vctx *v, int idx) {
  size_t len;
  const char *s = tostr(v, idx, &len), *p;
  if (!azb_sch_shape(v, idx, S_subnet, "/subscriptions/{subscription}/"
      "resourceGroups/{group}/providers/{provider}/virtualNetworks/{network}/"
      "subnets/{subnet}"))
    return 0;
  /* the 6th segment is the provider: "Only ARM virtual networks are supported" */
  p = s;
  for (int k = 0; k < 5; k++)
    p = strchr(p + 1, '/');
  if (azb_strnieq(p + 1, "Microsoft.Network/", 18))
    return 1;
  azb_verror(v, "only ARM virtual networks (Microsoft.Network/virtualNetworks) "
             "are supported");
  return 0;
}

static const char *const S_publicip[] = {
  "subscriptions", "*", "resourceGroups", "*", "providers", "Microsoft.Network",
  "publicIPAddresses", "*", NULL};

static int check_publicip(azb_vctx *v, int idx) {
  return azb_sch_shape(v, idx, S_publicip, "/subscriptions/{subscription}/"
    "resourceGroups/{group}/providers/Microsoft.Network/publicIPAddresses/{ip}");
}


/* letters, digits, '_', '.', '-'; starts alnum; ends alnum or '_'; <= 77 */
static int check_nat_name(azb_vctx *v, int idx) {
  size_t len, i;
  const char *s = tostr(v, idx, &len);
  for (i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (!azb_isalnum(c) && c != '_' && c != '.' && c != '-')
      break;
  }
  if (len >= 1 && len <= 77 && i == len && azb_isalnum((unsigned char)s[0]) &&
      (azb_isalnum((unsigned char)s[len - 1]) || s[len - 1] == '_'))
    return 1;
  azb_verror(v, "must be 1 to 77 letters, digits, '_', '.' or '-', starting "
             "with a letter or digit and ending with a letter, digit or '_'");
  return 0;
}

static int check_backend_port(azb_vctx *v, int idx) {
  lua_Integer p = lua_tointeger(v->L, idx);
  if (p != 29876 && p != 29877)
    return 1;
  azb_verror(v, "ports 29876 and 29877 are reserved");
  return 0;
}

static int check_frontend_port(azb_vctx *v, int idx) {
  lua_Integer p = lua_tointeger(v->L, idx);
  if (p < 50000 || p > 55000)
    return 1;
  azb_verror(v, "ports 50000 to 55000 are reserved");
  return 0;
}

/* '*', "22" or "100-200", ports 0..65535; lo/hi out */
static int parse_ports(const char *s, size_t len, long *lo, long *hi) {
  size_t i = 0;
  long a = 0, b;
  if (len == 1 && s[0] == '*') {
    *lo = 0;
    *hi = 65535;
    return 1;
  }
  if (len == 0 || len > 11)
    return 0;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
    a = a * 10 + (s[i] - '0');
  if (i == 0 || a > 65535)
    return 0;
  b = a;
  if (i < len) {
    size_t start;
    if (s[i] != '-')
      return 0;
    start = ++i;
    for (b = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
      b = b * 10 + (s[i] - '0');
    if (i == start || i != len || b > 65535 || b < a)
      return 0;
  }
  *lo = a;
  *hi = b;
  return 1;
}

static int check_port_range(azb_vctx *v, int idx) {
  size_t len;
  const char *s = tostr(v, idx, &len);
  long lo, hi;
  if (parse_ports(s, len, &lo, &hi))
    return 1;
  azb_verror(v, "expected '*', a port or a range such as '100-200' within "
             "0-65535, got %s", azb_text_pushquoted(v->L, s, len, '\''));
  lua_pop(v->L, 1);
  return 0;
}

/* Record the message on top of the stack at <a>[i].<b>; pops it. */
static void error_at_item(azb_vctx *v, const char *a, lua_Integer i,
                          const char *b) {
  azb_path_key(v, a);
  azb_path_index(v, i);
  azb_verror_at(v, b, "%s", lua_tostring(v->L, -1));
  azb_path_pop(v);
  azb_path_pop(v);
  lua_pop(v->L, 1);
}

/*
** {======================================================
** Network configuration
** =======================================================
*/

static void nsg_rule(azb_vctx *v, int src, int copy) {
  lua_State *L = v->L;
  long lo[64], hi[64];
  lua_Integer n;
  (void)src;
  if (azb_sch_push(L, copy, "sourcePortRanges", NULL) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n && i <= 64; i++) {
    size_t len;
    const char *s;
    lo[i - 1] = -1;
    hi[i - 1] = -2;
    lua_rawgeti(L, -1, i);
    s = lua_tolstring(L, -1, &len);
    if (s != NULL && parse_ports(s, len, &lo[i - 1], &hi[i - 1])) {
      for (lua_Integer j = 1; j < i; j++)
        if (lo[i - 1] <= hi[j - 1] && lo[j - 1] <= hi[i - 1]) {
          azb_path_key(v, "sourcePortRanges");
          azb_path_index(v, i);
          azb_verror(v, "overlaps sourcePortRanges[%I]", (LUAI_UACINT)j);
          azb_path_pop(v);
          azb_path_pop(v);
          break;
        }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static const azb_field F_NetworkSecurityGroupRule[] = {
  F_INT("priority", AZB_REQUIRED, 150, 4096),
  F_ENUM("access", AZB_REQUIRED, E_access),
  F_STRN("sourceAddressPrefix", AZB_REQUIRED, 1, 0, NULL),
  F_ARRSTR("sourcePortRanges", 0, 0, 0, check_port_range),
};
static const azb_object NetworkSecurityGroupRule =
  AZB_OBJECT("NetworkSecurityGroupRule", F_NetworkSecurityGroupRule, nsg_rule);

static void nat_rule(azb_vctx *v, int src, int copy) {
  lua_Integer a, b;
  (void)src;
  if (!azb_sch_getint(v->L, copy, "frontendPortRangeStart", &a) ||
      !azb_sch_getint(v->L, copy, "frontendPortRangeEnd", &b))
    return;
  if (b - a + 1 < 40)
    azb_verror_at(v, "frontendPortRangeEnd", "the range %I-%I must contain at "
                  "least 40 ports", (LUAI_UACINT)a, (LUAI_UACINT)b);
  else if (a < 50000 && b > 55000)
    azb_verror_at(v, "frontendPortRangeEnd", "the range %I-%I includes the "
                  "reserved ports 50000 to 55000", (LUAI_UACINT)a, (LUAI_UACINT)b);
}

static const azb_field F_BatchInboundNatPool[] = {
  F_STRN("name", AZB_REQUIRED, 0, 0, check_nat_name),
  F_ENUM("protocol", AZB_REQUIRED, E_protocol),
  F_INTC("backendPort", AZB_REQUIRED, 1, 65535, check_backend_port),
  F_INTC("frontendPortRangeStart", AZB_REQUIRED, 1, 65534, check_frontend_port),
  F_INTC("frontendPortRangeEnd", AZB_REQUIRED, 1, 65534, check_frontend_port),
  F_ARR("networkSecurityGroupRules", 0, NetworkSecurityGroupRule, 0, 0),
};
static const azb_object BatchInboundNatPool =
  AZB_OBJECT("BatchInboundNatPool", F_BatchInboundNatPool, nat_rule);

/* NSG rule r of NAT pool i (1-based) repeats an earlier priority? */
static int repeated_priority(lua_State *L, int pools, lua_Integer i,
                             lua_Integer r, lua_Integer p) {
  int found = 0;
  for (lua_Integer j = 1; j <= i && !found; j++) {
    lua_Integer m, x;
    lua_rawgeti(L, pools, j);
    if (azb_sch_push(L, lua_gettop(L), "networkSecurityGroupRules", NULL) == LUA_TTABLE) {
      m = j == i ? r - 1 : (lua_Integer)lua_rawlen(L, -1);
      for (lua_Integer q = 1; q <= m && !found; q++) {
        if (lua_rawgeti(L, -1, q) == LUA_TTABLE)
          found = azb_sch_getint(L, lua_gettop(L), "priority", &x) && x == p;
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 2);
  }
  return found;
}

/* NSG rules of NAT pool i: count toward 25 per pool, unique priorities. */
static void nsg_rules(azb_vctx *v, int pools, lua_Integer i, lua_Integer *total) {
  lua_State *L = v->L;
  lua_Integer m, p;
  lua_rawgeti(L, pools, i);
  if (azb_sch_push(L, lua_gettop(L), "networkSecurityGroupRules", NULL) != LUA_TTABLE) {
    lua_pop(L, 2);
    return;
  }
  m = (lua_Integer)lua_rawlen(L, -1);
  *total += m;
  if (*total > 25 && *total - m <= 25) {
    lua_pushfstring(L, "at most 25 network security group rules per pool, got %I",
                    (LUAI_UACINT)*total);
    error_at_item(v, "inboundNATPools", i, "networkSecurityGroupRules");
  }
  for (lua_Integer r = 1; r <= m; r++) {
    if (lua_rawgeti(L, -1, r) == LUA_TTABLE &&
        azb_sch_getint(L, lua_gettop(L), "priority", &p) &&
        repeated_priority(L, pools, i, r, p)) {
      azb_path_key(v, "inboundNATPools");
      azb_path_index(v, i);
      lua_pushfstring(L, "duplicate priority %I in the pool", (LUAI_UACINT)p);
      error_at_item(v, "networkSecurityGroupRules", r, "priority");
      azb_path_pop(v);
      azb_path_pop(v);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* NAT pools i and j (j < i) collide on name, backend port or frontend range? */
static void nat_pair(azb_vctx *v, int pi, int pj, lua_Integer i, lua_Integer j) {
  lua_State *L = v->L;
  lua_Integer a, b, x, y;
  const char *name = azb_sch_getstr(L, pi, "name");
  const char *other = azb_sch_getstr(L, pj, "name");
  if (name != NULL && other != NULL && azb_strieq(name, other)) {
    lua_pushfstring(L, "duplicate name (also inboundNATPools[%I])", (LUAI_UACINT)j);
    error_at_item(v, "inboundNATPools", i, "name");
  }
  if (azb_sch_getint(L, pi, "backendPort", &a) &&
      azb_sch_getint(L, pj, "backendPort", &x) && a == x) {
    lua_pushfstring(L, "duplicate backendPort %I (also inboundNATPools[%I])",
                    (LUAI_UACINT)a, (LUAI_UACINT)j);
    error_at_item(v, "inboundNATPools", i, "backendPort");
  }
  if (azb_sch_getint(L, pi, "frontendPortRangeStart", &a) &&
      azb_sch_getint(L, pi, "frontendPortRangeEnd", &b) &&
      azb_sch_getint(L, pj, "frontendPortRangeStart", &x) &&
      azb_sch_getint(L, pj, "frontendPortRangeEnd", &y) && a <= y && x <= b) {
    lua_pushfstring(L, "the frontend range %I-%I overlaps inboundNATPools[%I]",
                    (LUAI_UACINT)a, (LUAI_UACINT)b, (LUAI_UACINT)j);
    error_at_item(v, "inboundNATPools", i, "frontendPortRangeStart");
  }
}

/* Pool-wide: unique names, backend ports and NSG priorities, disjoint
** frontend ranges, at most 25 NSG rules. */
static void endpoint_rule(azb_vctx *v, int src, int copy) {
  lua_State *L = v->L;
  lua_Integer n, nrules = 0;
  int pools;
  (void)src;
  if (azb_sch_push(L, copy, "inboundNATPools", NULL) != LUA_TTABLE)
    return;   /* the walker resets the stack after a rule */
  pools = lua_gettop(L);
  n = (lua_Integer)lua_rawlen(L, pools);
  if (n > 5)
    n = 5;   /* "at most 5 items" is already reported */
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, pools, i) != LUA_TTABLE) {
      lua_pop(L, 1);
      continue;
    }
    for (lua_Integer j = 1; j < i; j++) {
      if (lua_rawgeti(L, pools, j) == LUA_TTABLE)
        nat_pair(v, lua_gettop(L) - 1, lua_gettop(L), i, j);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    nsg_rules(v, pools, i, &nrules);
  }
  lua_settop(L, pools - 1);
}

static const azb_field F_BatchPoolEndpointConfiguration[] = {
  F_ARR("inboundNATPools", AZB_REQUIRED, BatchInboundNatPool, 0, 5),
};
static const azb_object BatchPoolEndpointConfiguration =
  AZB_OBJECT("BatchPoolEndpointConfiguration", F_BatchPoolEndpointConfiguration,
             endpoint_rule);

static const azb_field F_BatchPoolEndpointConfigurationUpdate[] = {
  F_ARR("inboundNATPools", 0, BatchInboundNatPool, 0, 5),
};
static const azb_object BatchPoolEndpointConfigurationUpdate =
  AZB_OBJECT("BatchPoolEndpointConfigurationUpdate",
             F_BatchPoolEndpointConfigurationUpdate, endpoint_rule);

static const azb_field F_IPTag[] = {
  F_STR("ipTagType", 0),
  F_STR("tag", 0),
};
static const azb_object IPTag = AZB_OBJECT("IPTag", F_IPTag, NULL);

static const azb_field F_BatchPublicIpAddressConfiguration[] = {
  F_ENUM("provision", 0, E_provision),
  F_ARRENUM("ipFamilies", 0, E_ipfamily),
  F_ARRSTR("ipAddressIds", 0, 0, 0, check_publicip),
  F_ARR("ipTags", 0, IPTag, 0, 0),
};
static const azb_object BatchPublicIpAddressConfiguration =
  AZB_OBJECT("BatchPublicIpAddressConfiguration",
             F_BatchPublicIpAddressConfiguration, NULL);

/* endpointConfiguration "cannot be specified if the IPAddressProvisioningType
** is NoPublicIPAddresses" */
static void network_rule(azb_vctx *v, int src, int copy) {
  azb_sch_push(v->L, copy, "publicIPAddressConfiguration", "provision", NULL);
  if (lua_type(v->L, -1) == LUA_TSTRING &&
      strcmp(lua_tostring(v->L, -1), "nopublicipaddresses") == 0 &&
      azb_sch_has(v->L, src, "endpointConfiguration"))
    azb_verror_at(v, "endpointConfiguration", "must not be set when "
                  "publicIPAddressConfiguration.provision is 'nopublicipaddresses'");
  lua_pop(v->L, 1);
}

static const azb_field F_NetworkConfiguration[] = {
  F_STRN("subnetId", 0, 1, 0, check_subnet),
  F_ENUM("dynamicVNetAssignmentScope", 0, E_vnetscope),
  F_OBJ("endpointConfiguration", 0, BatchPoolEndpointConfiguration),
  F_OBJ("publicIPAddressConfiguration", 0, BatchPublicIpAddressConfiguration),
  F_BOOL("enableAcceleratedNetworking", 0),
};
const azb_object azb_NetworkConfiguration =
  AZB_OBJECT("NetworkConfiguration", F_NetworkConfiguration, network_rule);

static const azb_field F_NetworkConfigurationUpdate[] = {
  F_STRN("subnetId", 0, 1, 0, check_subnet),
  F_ENUM("dynamicVNetAssignmentScope", 0, E_vnetscope),
  F_OBJ("endpointConfiguration", 0, BatchPoolEndpointConfigurationUpdate),
  F_OBJ("publicIPAddressConfiguration", 0, BatchPublicIpAddressConfiguration),
  F_BOOL("enableAcceleratedNetworking", 0),
};
const azb_object azb_NetworkConfigurationUpdate =
  AZB_OBJECT("NetworkConfigurationUpdate", F_NetworkConfigurationUpdate,
             network_rule);

/* }====================================================== */


