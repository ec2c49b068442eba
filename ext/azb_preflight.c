/*
** azb_preflight.c: the preflight rules. Facts in (the pool body, and the
** ARM and data-plane resources the Lua layer read, as they were read),
** findings out, each with a stable code, the pool field it concerns, a
** one-line message and a fix. Reading turns the facts into C structs,
** the rules judge those, and only the emitting of findings builds Lua
** values. Facts come from the network: a mistyped or missing sub-field
** is unknown, never a raise; a check that cannot run says so in a
** CHECK_SKIPPED warning and never makes an error on its own.
*/
#include <stdarg.h>
#include <string.h>

#include "azb.h"

#define VMCONF        "pool.virtualMachineConfiguration"
#define F_IMAGEREF    VMCONF ".imageReference"
#define F_VMID        F_IMAGEREF ".virtualMachineImageId"
#define F_SHARED      F_IMAGEREF ".sharedGalleryImageId"
#define F_COMMUNITY   F_IMAGEREF ".communityGalleryImageId"
#define F_IMAGEURIS   VMCONF ".osDisk.imageUris"
#define F_AGENT       VMCONF ".nodeAgentSKUId"
#define F_RESIZE      "pool.resizeTimeout"
#define F_FORMULA     "pool.autoScaleFormula"
#define F_VMSIZE      "pool.vmSize"

#define DEFAULT_RESIZE  900.0          /* the service's PT15M */
#define EOL_WARN_DAYS   90
#define DAY             86400.0
#define COUNT_MAX       2147483647LL   /* int32, the REST counts */
#define QUOTE_LEN       160            /* bytes of a fact in a message */
#define ID_LEN          AZB_TEXT_MAX   /* ids in fixes are never cut short */
#define REGIONS_SHOWN   6
#define NAMES_SHOWN     4
#define LIST_MAX        100000         /* entries of a list read */

enum { SEV_ERROR, SEV_WARNING, SEV_INFO, NSEV };
static const char *const sev_names[NSEV] = { "error", "warning", "info" };

enum { K_MARKET, K_GVERSION, K_GLATEST, K_MANAGED, K_SHARED, K_COMMUNITY,
       K_VHD };
static const char *const kind_names[] = {
  "marketplace", "gallery_version", "gallery_latest", "managed_image",
  "shared_gallery", "community_gallery", "vhd", NULL
};

enum { OS_UNKNOWN, OS_LINUX, OS_WINDOWS };

/* Facts that may be unread, by their name in facts and facts.unread. */
enum { U_ACCOUNT, U_USAGE, U_DEF, U_VERSION, U_VERSIONS, U_MANAGED,
       U_VMSIZE, U_SUPPORTED, U_STORAGE, NFACTS };
static const char *const fact_names[NFACTS] = {
  "account", "usage", "image_definition", "image_version", "image_versions",
  "managed_image", "vm_size", "supported_images", "storage_account"
};

/* Check groups a CHECK_SKIPPED finding names (one finding each). */
enum { G_SUBSCRIPTION, G_REGION, G_REPLICATION, G_REPLICAS, G_VERSION,
       G_LATEST, G_DEFINITION, G_MANAGED, G_MODE, G_AGENT, G_HYPERV,
       G_RESIZE, G_QUOTA, G_USAGE, G_EOL, G_STORAGE, NGROUPS };
static const char *const group_names[NGROUPS] = {
  "subscription", "region", "replication", "replica count", "image version",
  "latest version", "image definition", "managed image", "account mode",
  "node agent", "Hyper-V generation", "resize timeout", "quota", "usage",
  "end of life", "storage account"
};


/*
** {======================================================
** Pure helpers: spans, versions, dates, ids, regions, formulas
** =======================================================
*/

static int lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int isdigit_(int c) { return c >= '0' && c <= '9'; }

static int span_ieq(azb_span a, azb_span b) {
  if (a.p == NULL || b.p == NULL || a.n != b.n)
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
  return span_ieq(a, b);
}

static int span_ends(azb_span a, const char *suffix) {
  size_t n = strlen(suffix);
  azb_span tail;
  if (a.p == NULL || a.n < n)
    return 0;
  tail.p = a.p + a.n - n;
  tail.n = n;
  return span_is(tail, suffix);
}

/* Region names as ARM writes them ("West Europe", "westeurope"). */
static int region_eq(azb_span a, azb_span b) {
  size_t i = 0, j = 0, same = 0;
  if (a.p == NULL || b.p == NULL)
    return 0;
  for (;; same++) {
    while (i < a.n && (a.p[i] == ' ' || a.p[i] == '-' || a.p[i] == '_'))
      i++;
    while (j < b.n && (b.p[j] == ' ' || b.p[j] == '-' || b.p[j] == '_'))
      j++;
    if (i == a.n || j == b.n)
      return i == a.n && j == b.n && same > 0;
    if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[j]))
      return 0;
    i++;
    j++;
  }
}

/* "/subscriptions/{id}/...": the id, or an empty span. */
static azb_span id_subscription(azb_span id) {
  static const char prefix[] = "/subscriptions/";
  azb_span head, sub = { NULL, 0 };
  size_t n = sizeof prefix - 1, j;
  if (id.p == NULL || id.n <= n)
    return sub;
  head.p = id.p;
  head.n = n;
  if (!span_is(head, prefix))
    return sub;
  for (j = n; j < id.n && id.p[j] != '/'; j++)
    ;
  if (j > n) {
    sub.p = id.p + n;
    sub.n = j - n;
  }
  return sub;
}

/* The last segment of an id or path, or an empty span. */
static azb_span last_segment(azb_span id) {
  azb_span s = { NULL, 0 };
  size_t i;
  if (id.p == NULL)
    return s;
  for (i = id.n; i > 0 && id.p[i - 1] != '/'; i--)
    ;
  s.p = id.p + i;
  s.n = id.n - i;
  return s;
}

/*
** A gallery version name: exactly major.minor.patch, each a decimal
** int32 (the gallery's own rule). Returns 1 and fills v, else 0.
*/
static int parse_semver(azb_span s, long long v[3]) {
  size_t i = 0;
  if (s.p == NULL)
    return 0;
  for (int k = 0; k < 3; k++) {
    size_t start = i;
    v[k] = 0;
    while (i < s.n && isdigit_((unsigned char)s.p[i])) {
      v[k] = v[k] * 10 + (s.p[i] - '0');
      if (v[k] > COUNT_MAX)
        return 0;
      i++;
    }
    if (i == start)
      return 0;
    if (k < 2) {
      if (i >= s.n || s.p[i] != '.')
        return 0;
      i++;
    }
  }
  return i == s.n;
}

static int semver_cmp(const long long a[3], const long long b[3]) {
  for (int k = 0; k < 3; k++)
    if (a[k] != b[k])
      return a[k] < b[k] ? -1 : 1;
  return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant). */
static long long days_from_civil(long long y, int m, int d) {
  long long era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d) {
  long long era, doe, yoe, doy, mp;
  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int digits(const char *p, size_t n, size_t at, int count, int *out) {
  int v = 0;
  if (at + (size_t)count > n)
    return 0;
  for (int i = 0; i < count; i++) {
    if (!isdigit_((unsigned char)p[at + i]))
      return 0;
    v = v * 10 + (p[at + i] - '0');
  }
  *out = v;
  return 1;
}

/*
** An ISO-8601 date or date-time as ARM and Batch write them
** ("2025-06-30", "2019-11-01T00:00:00.0Z", "2026-01-01T00:00:00+01:00"):
** seconds since the epoch. Returns 1, or 0 for anything else.
*/
static int parse_time(azb_span s, double *t) {
  const char *p = s.p;
  size_t n = s.n, i = 10;
  int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
  static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };
  if (p == NULL || !digits(p, n, 0, 4, &y) || n < 10 || p[4] != '-' ||
      !digits(p, n, 5, 2, &mo) || p[7] != '-' || !digits(p, n, 8, 2, &d))
    return 0;
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
      (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
    return 0;
  if (i < n && (p[i] == 'T' || p[i] == 't' || p[i] == ' ')) {
    if (!digits(p, n, i + 1, 2, &h) || i + 3 >= n || p[i + 3] != ':' ||
        !digits(p, n, i + 4, 2, &mi))
      return 0;
    i += 6;
    if (i < n && p[i] == ':') {
      if (!digits(p, n, i + 1, 2, &sec))
        return 0;
      i += 3;
      if (i < n && (p[i] == '.' || p[i] == ',')) {
        size_t start = ++i;
        while (i < n && isdigit_((unsigned char)p[i]))
          i++;
        if (i == start)
          return 0;
      }
    }
    if (h > 23 || mi > 59 || sec > 60)
      return 0;
    if (i < n && (p[i] == 'Z' || p[i] == 'z'))
      i++;
    else if (i < n && (p[i] == '+' || p[i] == '-')) {
      sign = p[i] == '-' ? -1 : 1;
      if (!digits(p, n, i + 1, 2, &oh))
        return 0;
      i += 3;
      if (i < n && p[i] == ':')
        i++;
      if (!digits(p, n, i, 2, &om))
        return 0;
      i += 2;
      if (oh > 23 || om > 59)
        return 0;
    }
  }
  if (i != n)
    return 0;
  *t = (double)days_from_civil(y, mo, d) * DAY + h * 3600.0 + mi * 60.0 +
       sec - sign * (oh * 3600.0 + om * 60.0);
  return 1;
}

/* "YYYY-MM-DD" of t into out (>= 16 bytes). */
static void format_date(double t, char *out) {
  long long days = (long long)(t / DAY), y;
  int m, d, k = 0;
  char tmp[24];
  if ((double)days * DAY > t)
    days--;
  civil_from_days(days, &y, &m, &d);
  if (y < 0 || y > 9999)
    y = y < 0 ? 0 : 9999;
  tmp[k++] = (char)('0' + y / 1000);
  tmp[k++] = (char)('0' + y / 100 % 10);
  tmp[k++] = (char)('0' + y / 10 % 10);
  tmp[k++] = (char)('0' + y % 10);
  tmp[k++] = '-';
  tmp[k++] = (char)('0' + m / 10);
  tmp[k++] = (char)('0' + m % 10);
  tmp[k++] = '-';
  tmp[k++] = (char)('0' + d / 10);
  tmp[k++] = (char)('0' + d % 10);
  tmp[k] = '\0';
  memcpy(out, tmp, (size_t)k + 1);
}

/* Is the span a plain non-negative decimal number? Its value in *v. */
static int number_literal(const char *p, size_t n, double *v) {
  double r = 0, scale = 1;
  size_t i = 0;
  int ndig = 0, dot = 0;
  for (; i < n; i++) {
    if (isdigit_((unsigned char)p[i])) {
      if (dot) {
        scale /= 10;
        r += (p[i] - '0') * scale;
      }
      else if (r < 1e15)
        r = r * 10 + (p[i] - '0');
      ndig++;
    }
    else if (p[i] == '.' && !dot)
      dot = 1;
    else
      return 0;
  }
  *v = r;
  return ndig > 0;
}

static int isspace_(int c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
         c == '\v';
}

static int isident(int c) {
  return isdigit_(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '_' || c == '$';
}

/* Trim blanks off both ends of [*p, *p + *n). */
static void trim(const char **p, size_t *n) {
  while (*n > 0 && isspace_((unsigned char)(*p)[0])) {
    (*p)++;
    (*n)--;
  }
  while (*n > 0 && isspace_((unsigned char)(*p)[*n - 1]))
    (*n)--;
}

/*
** An upper bound of an assigned expression: a number, or min(...) with at
** least one number among its arguments (the smallest). 1 and *v, or 0.
*/
static int expr_bound(const char *p, size_t n, double *v) {
  size_t i, start, depth = 0;
  int found = 0;
  trim(&p, &n);
  if (number_literal(p, n, v))
    return 1;
  if (n < 5 || lower((unsigned char)p[0]) != 'm' ||
      lower((unsigned char)p[1]) != 'i' || lower((unsigned char)p[2]) != 'n')
    return 0;
  for (i = 3; i < n && isspace_((unsigned char)p[i]); i++)
    ;
  if (i >= n || p[i] != '(' || p[n - 1] != ')')
    return 0;
  start = ++i;
  for (; i < n; i++) {
    int c = (unsigned char)p[i];
    if (c == '(')
      depth++;
    else if (c == ')' && depth > 0)
      depth--;
    else if ((c == ',' && depth == 0) || (c == ')' && i == n - 1)) {
      double a;
      const char *arg = p + start;
      size_t an = i - start;
      trim(&arg, &an);
      if (number_literal(arg, an, &a) && (!found || a < *v)) {
        *v = a;
        found = 1;
      }
      start = i + 1;
    }
    else if (c == ')')
      return 0;   /* min(...) is not the whole expression */
  }
  return found;
}

/* Skip blanks and comments from i; returns the new index. */
static size_t skip_blank(const char *p, size_t n, size_t i) {
  for (;;) {
    while (i < n && isspace_((unsigned char)p[i]))
      i++;
    if (i + 1 < n && p[i] == '/' && p[i + 1] == '/') {
      while (i < n && p[i] != '\n')
        i++;
    }
    else if (i + 1 < n && p[i] == '/' && p[i + 1] == '*') {
      i += 2;
      while (i + 1 < n && !(p[i] == '*' && p[i + 1] == '/'))
        i++;
      i = i + 2 < n ? i + 2 : n;
    }
    else
      return i;
  }
}

/*
** The largest value the autoscale formula can give 'var' (such as
** "$TargetDedicatedNodes"). Statements run in order, so the last
** assignment decides: 1 with *bound when it is a number or a min(...)
** with a number, 0 when it is something else, -1 when nothing assigns it.
*/
static int formula_bound(const char *p, size_t n, const char *var,
                         double *bound) {
  size_t vn = strlen(var), i = 0;
  int result = -1;
  while (i < n) {
    size_t s = skip_blank(p, n, i), e = s;
    /* the end of the statement: the next ';' outside comments */
    while (e < n && p[e] != ';') {
      if (e + 1 < n && p[e] == '/' && (p[e + 1] == '/' || p[e + 1] == '*'))
        e = skip_blank(p, n, e);
      else
        e++;
    }
    if (e - s > vn) {
      size_t k;
      for (k = 0; k < vn; k++)
        if (lower((unsigned char)p[s + k]) != lower((unsigned char)var[k]))
          break;
      if (k == vn && !isident((unsigned char)p[s + vn])) {
        size_t a = skip_blank(p, e, s + vn);
        if (a < e && p[a] == '=' && (a + 1 >= e || p[a + 1] != '=')) {
          double v = 0;
          /* comments inside the expression: give up rather than guess */
          int clean = 1;
          for (size_t c = a + 1; c + 1 < e; c++)
            if (p[c] == '/' && (p[c + 1] == '/' || p[c + 1] == '*'))
              clean = 0;
          result = clean && expr_bound(p + a + 1, e - a - 1, &v);
          if (result)
            *bound = v;
        }
      }
    }
    i = e + 1;
  }
  return result;
}

/* A whole number of nodes from a bound: rounded up, capped to int32. */
static long long bound_nodes(double v) {
  long long r;
  if (!(v > 0))
    return 0;
  if (v >= (double)COUNT_MAX)
    return COUNT_MAX;
  r = (long long)v;
  return (double)r < v ? r + 1 : r;
}

/* }====================================================== */


/*
** {======================================================
** The facts, read into C
** =======================================================
*/

typedef struct unread {
  int present;          /* facts.unread[name] is there */
  long long status;     /* HTTP status, or 0 */
  azb_span code, message;
} unread;

/* A gallery image version, as far as the rules need it. */
typedef struct version {
  int present;
  azb_span name, id, eol;
  int exclude, failed;          /* excludeFromLatest; provisioningState */
  long long replica_count;      /* publishingProfile.replicaCount or -1 */
  int nregions;
  azb_span regions[REGIONS_SHOWN];
  int in_region;                /* a target region is the account's */
  long long region_replicas;    /* its regionalReplicaCount or -1 */
  int region_exclude;           /* its excludeFromLatest */
  int has_status;               /* replicationStatus was read */
  azb_span aggregated;
  int has_state;                /* a summary entry for the region */
  azb_span state, details;
  long long progress;           /* -1 when not given */
} version;

typedef struct pf {
  lua_State *L;
  double now;
  int shared_key;
  int kind;
  /* facts.image */
  azb_span img_id, img_sub, img_uri, img_version, img_name;
  int latest_id;                /* a '.../versions/latest' id */
  /* facts.pool */
  int autoscale;
  long long ded, low;
  azb_span formula, resize, vmsize, agent;
  int resize_given;
  int legacy_vhd;               /* osDisk.imageUris */
  azb_span vhd_uri;
  /* facts.account */
  int acct;
  azb_span acct_id, acct_name, acct_sub, acct_loc, acct_mode;
  long long q_ded, q_low, q_pools, q_fam;   /* -1: unknown */
  int fam_enforced;
  int modes_known, mode_shared, mode_aad;
  /* facts.usage */
  int usage;
  long long u_pools, u_ded, u_low, u_fam;
  /* facts.vm_size */
  int vs;
  azb_span vs_name, vs_family;
  long long vcpus;
  int gens_known, gen_v1, gen_v2;
  /* facts.image_definition and facts.managed_image */
  int def;
  azb_span def_name, def_id, def_os, def_state, def_gen, def_eol;
  int mi;
  azb_span mi_id, mi_name, mi_loc, mi_os, mi_state, mi_gen;
  /* facts.image_versions: "latest" */
  int versions, nversions, nexcluded, nfailed, nother;
  azb_span excluded[NAMES_SHOWN];
  azb_span latest;
  /* the version the region rules judge */
  version ver;
  /* facts.supported_images, for the agent the pool ends up with */
  int si;
  int agent_listed, agent_os;
  int agent_eol_known;
  double agent_eol;
  int market_listed, market_os;
  azb_span market_eol;
  /* facts.storage_account */
  int sa;
  azb_span sa_id, sa_loc;
  unread un[NFACTS];
  /* the chooser's answer (stack indices; 0 when it was not asked) */
  int chose, chosen, reason;
  azb_span chosen_sku;
  /* output */
  int list[NSEV];
  int mark;
  unsigned skipped;
  long long nodes, replicas_needed;
} pf;

/* The length of the list at t, capped: facts lists are far shorter. */
static size_t list_len(lua_State *L, int t) {
  size_t n = lua_rawlen(L, t);
  return n > LIST_MAX ? LIST_MAX : n;
}

static int getf(lua_State *L, int t, const char *k) {
  lua_pushstring(L, k);
  return lua_rawget(L, t);
}

/* t[k] when it is a string (anchored by t), else an empty span. */
static azb_span sfield(lua_State *L, int t, const char *k) {
  azb_span s = { NULL, 0 };
  if (t == 0)
    return s;
  if (getf(L, t, k) == LUA_TSTRING)
    s.p = lua_tolstring(L, -1, &s.n);
  lua_pop(L, 1);
  return s;
}

/* Push t[k] and return its index when it is a table; else 0. */
static int tfield(lua_State *L, int t, const char *k) {
  if (t == 0)
    return 0;
  if (getf(L, t, k) == LUA_TTABLE)
    return lua_gettop(L);
  lua_pop(L, 1);
  return 0;
}

/* t[k] as a whole number in [0, max]; -1 when absent or anything else. */
static long long cfield(lua_State *L, int t, const char *k, long long max) {
  long long r = -1;
  if (t == 0)
    return -1;
  if (getf(L, t, k) == LUA_TNUMBER) {
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
  if (getf(L, t, k) == LUA_TBOOLEAN)
    r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/*
** facts[k]: a table, or (when optional) absent; a JSON null (light
** userdata) counts as absent. Anything else is misuse and raises. Pushes
** the table and returns its index, or returns 0.
*/
static int fact_table(lua_State *L, const char *k, int optional) {
  int t = getf(L, 1, k);
  if (t == LUA_TTABLE)
    return lua_gettop(L);
  if (optional && (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA)) {
    lua_pop(L, 1);
    return 0;
  }
  return luaL_argerror(L, 1, lua_pushfstring(L, "facts.%s: table expected, "
                       "got %s", k, luaL_typename(L, -1)));
}

static int os_value(azb_span s) {
  return span_is(s, "windows") ? OS_WINDOWS :
         span_is(s, "linux") ? OS_LINUX : OS_UNKNOWN;
}

static void read_unread(pf *c) {
  lua_State *L = c->L;
  int u = fact_table(L, "unread", 1);
  for (int f = 0; u != 0 && f < NFACTS; f++) {
    int t = getf(L, u, fact_names[f]);
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
      r->code = sfield(L, e, "code");
      r->message = sfield(L, e, "message");
    }
    else if (t == LUA_TSTRING)
      r->message.p = lua_tolstring(L, -1, &r->message.n);
    /* the value stays on the stack, anchoring the strings */
  }
}

static void read_image(pf *c, int img) {
  lua_State *L = c->L;
  azb_span kind = sfield(L, img, "kind");
  c->kind = -1;
  for (int k = 0; kind.p != NULL && kind_names[k] != NULL; k++)
    if (strlen(kind_names[k]) == kind.n &&
        memcmp(kind_names[k], kind.p, kind.n) == 0)
      c->kind = k;
  if (c->kind < 0)
    luaL_argerror(L, 1, "facts.image.kind: expected one of 'marketplace', "
                  "'gallery_version', 'gallery_latest', 'managed_image', "
                  "'shared_gallery', 'community_gallery', 'vhd'");
  c->img_id = sfield(L, img, "id");
  c->img_sub = id_subscription(c->img_id);
  if (c->img_sub.p == NULL)
    c->img_sub = sfield(L, img, "subscription");
  c->img_uri = sfield(L, img, "uri");
  c->img_version = sfield(L, img, "version");
  c->img_name = sfield(L, img, "name");
  if (c->img_name.p == NULL)
    c->img_name = sfield(L, img, "image");
  if ((c->kind == K_GVERSION || c->kind == K_GLATEST) &&
      (span_ends(c->img_id, "/versions/latest") ||
       (c->kind == K_GVERSION && span_is(c->img_version, "latest")))) {
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
  c->formula = sfield(L, pool, "autoScaleFormula");
  c->resize_given = getf(L, pool, "resizeTimeout") != LUA_TNIL;
  lua_pop(L, 1);
  c->resize = sfield(L, pool, "resizeTimeout");
  c->vmsize = sfield(L, pool, "vmSize");
  vmc = tfield(L, pool, "virtualMachineConfiguration");
  c->agent = sfield(L, vmc, "nodeAgentSKUId");
  if (c->agent.n == 0)
    c->agent.p = NULL;
  od = tfield(L, vmc, "osDisk");
  uris = tfield(L, od, "imageUris");
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
  c->acct_id = sfield(L, acct, "id");
  c->acct_sub = id_subscription(c->acct_id);
  c->acct_name = sfield(L, acct, "name");
  if (c->acct_name.p == NULL)
    c->acct_name = last_segment(c->acct_id);
  c->acct_loc = sfield(L, acct, "location");
  if (c->acct_loc.n == 0)
    c->acct_loc.p = NULL;
  props = tfield(L, acct, "properties");
  c->acct_mode = sfield(L, props, "poolAllocationMode");
  c->q_ded = cfield(L, props, "dedicatedCoreQuota", COUNT_MAX);
  c->q_low = cfield(L, props, "lowPriorityCoreQuota", COUNT_MAX);
  c->q_pools = cfield(L, props, "poolQuota", COUNT_MAX);
  c->fam_enforced = bfield(L, props, "dedicatedCoreQuotaPerVMFamilyEnforced")
                    == 1;
  fams = tfield(L, props, "dedicatedCoreQuotaPerVMFamily");
  if (fams != 0 && c->vs_family.p != NULL) {
    size_t n = list_len(L, fams);
    for (size_t i = 1; i <= n; i++) {
      if (lua_rawgeti(L, fams, (lua_Integer)i) == LUA_TTABLE &&
          span_ieq(sfield(L, lua_gettop(L), "name"), c->vs_family))
        c->q_fam = cfield(L, lua_gettop(L), "coreQuota", COUNT_MAX);
      lua_pop(L, 1);
      if (c->q_fam >= 0)
        break;
    }
  }
  modes = tfield(L, props, "allowedAuthenticationModes");
  if (modes != 0 && list_len(L, modes) > 0) {
    size_t n = list_len(L, modes);
    c->modes_known = 1;
    for (size_t i = 1; i <= n; i++) {
      azb_span m = { NULL, 0 };
      if (lua_rawgeti(L, modes, (lua_Integer)i) == LUA_TSTRING)
        m.p = lua_tolstring(L, -1, &m.n);
      c->mode_shared |= span_is(m, "SharedKey");
      c->mode_aad |= span_is(m, "AAD");
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
  fam = tfield(L, u, "dedicatedCoresByFamily");
  if (fam != 0 && c->vs_family.p != NULL) {
    /* keys as ARM spells the family; look for it ignoring case */
    lua_pushnil(L);
    while (lua_next(L, fam) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        azb_span k;
        k.p = lua_tolstring(L, -2, &k.n);
        if (span_ieq(k, c->vs_family) && lua_type(L, -1) == LUA_TNUMBER) {
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
  c->vs_name = sfield(L, vs, "name");
  c->vs_family = sfield(L, vs, "family");
  caps = tfield(L, vs, "capabilities");
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
      name = sfield(L, e, "name");
      value = sfield(L, e, "value");
      if (span_is(name, "vCPUs")) {
        double v;
        if (value.p != NULL && number_literal(value.p, value.n, &v) &&
            v >= 1 && v <= 65536 && (double)(long long)v == v)
          c->vcpus = (long long)v;
        else
          c->vcpus = cfield(L, e, "value", 65536);
        if (c->vcpus == 0)
          c->vcpus = -1;
      }
      else if (span_is(name, "HyperVGenerations") && value.p != NULL) {
        size_t s = 0;
        c->gens_known = 1;
        for (size_t k = 0; k <= value.n; k++)
          if (k == value.n || value.p[k] == ',') {
            const char *g = value.p + s;
            size_t gn = k - s;
            azb_span gs;
            trim(&g, &gn);
            gs.p = g;
            gs.n = gn;
            c->gen_v1 |= span_is(gs, "V1");
            c->gen_v2 |= span_is(gs, "V2");
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
  c->def_id = sfield(L, def, "id");
  c->def_name = sfield(L, def, "name");
  if (c->def_name.p == NULL)
    c->def_name = last_segment(c->def_id);
  props = tfield(L, def, "properties");
  c->def_os = sfield(L, props, "osType");
  c->def_state = sfield(L, props, "osState");
  c->def_gen = sfield(L, props, "hyperVGeneration");
  c->def_eol = sfield(L, props, "endOfLifeDate");
}

static void read_managed(pf *c, int mi) {
  lua_State *L = c->L;
  int props, sp, od;
  if (mi == 0)
    return;
  c->mi = 1;
  c->mi_id = sfield(L, mi, "id");
  c->mi_name = sfield(L, mi, "name");
  if (c->mi_name.p == NULL)
    c->mi_name = last_segment(c->mi_id);
  c->mi_loc = sfield(L, mi, "location");
  props = tfield(L, mi, "properties");
  sp = tfield(L, props, "storageProfile");
  od = tfield(L, sp, "osDisk");
  c->mi_os = sfield(L, od, "osType");
  c->mi_state = sfield(L, od, "osState");
  c->mi_gen = sfield(L, props, "hyperVGeneration");
}

/* The version table at idx into v (spans anchored by it). */
static void read_version(pf *c, int idx, version *v) {
  lua_State *L = c->L;
  int top = lua_gettop(L), props, pp, regions, rs, summary;
  memset(v, 0, sizeof *v);
  v->replica_count = v->region_replicas = v->progress = -1;
  v->present = 1;
  v->id = sfield(L, idx, "id");
  v->name = sfield(L, idx, "name");
  if (v->name.p == NULL)
    v->name = last_segment(v->id);
  props = tfield(L, idx, "properties");
  v->failed = span_is(sfield(L, props, "provisioningState"), "Failed");
  pp = tfield(L, props, "publishingProfile");
  v->exclude = bfield(L, pp, "excludeFromLatest") == 1;
  v->eol = sfield(L, pp, "endOfLifeDate");
  v->replica_count = cfield(L, pp, "replicaCount", COUNT_MAX);
  regions = tfield(L, pp, "targetRegions");
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
      name = sfield(L, e, "name");
      if (name.n > 0) {
        if (v->nregions < REGIONS_SHOWN)
          v->regions[v->nregions] = name;
        v->nregions++;
        if (!v->in_region && region_eq(name, c->acct_loc)) {
          v->in_region = 1;
          v->region_replicas = cfield(L, e, "regionalReplicaCount",
                                      COUNT_MAX);
          v->region_exclude = bfield(L, e, "excludeFromLatest") == 1;
        }
      }
      lua_pop(L, 1);
    }
  }
  rs = tfield(L, props, "replicationStatus");
  if (rs != 0) {
    v->has_status = 1;
    v->aggregated = sfield(L, rs, "aggregatedState");
    summary = tfield(L, rs, "summary");
    if (summary != 0) {
      size_t n = list_len(L, summary);
      for (size_t i = 1; i <= n && !v->has_state; i++) {
        int e;
        if (lua_rawgeti(L, summary, (lua_Integer)i) == LUA_TTABLE) {
          e = lua_gettop(L);
          if (region_eq(sfield(L, e, "region"), c->acct_loc)) {
            v->has_state = 1;
            v->state = sfield(L, e, "state");
            v->details = sfield(L, e, "details");
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
    if (!parse_semver(v.name, sv))
      c->nother++;
    else if (v.exclude || v.region_exclude) {
      if (c->nexcluded < NAMES_SHOWN)
        c->excluded[c->nexcluded] = v.name;
      c->nexcluded++;
    }
    else if (v.failed)
      c->nfailed++;
    else if (semver_cmp(sv, best) > 0) {
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
    esku = sfield(L, e, "nodeAgentSKUId");
    eol = sfield(L, e, "batchSupportEndOfLife");
    ir = tfield(L, e, "imageReference");
    if (c->kind == K_MARKET && !c->market_listed &&
        span_ieq(sfield(L, ir, "publisher"), pub) &&
        span_ieq(sfield(L, ir, "offer"), offer) &&
        span_ieq(sfield(L, ir, "sku"), sku)) {
      c->market_listed = 1;
      c->market_os = os_value(sfield(L, e, "osType"));
      c->market_eol = eol;
    }
    if (agent.p != NULL && span_ieq(esku, agent)) {
      double t;
      if (!any)
        c->agent_os = os_value(sfield(L, e, "osType"));
      any = 1;
      if (eol.p != NULL && parse_time(eol, &t)) {
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
  c->sa_id = sfield(L, sa, "id");
  c->sa_loc = sfield(L, sa, "location");
}

/* }====================================================== */


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
static const char *q(pf *c, azb_span s) {
  return push_q(c->L, s, '\'', QUOTE_LEN);
}

/* An id for a command in a fix: "cleaned", never cut short. */
static const char *qid(pf *c, azb_span s) {
  return push_q(c->L, s, '"', ID_LEN);
}

static void begin(pf *c) {
  luaL_checkstack(c->L, 24, NULL);
  c->mark = lua_gettop(c->L);
}

/*
** Record a finding. 'msg' and 'fix' (or NULL) are strings on the stack
** above the mark of begin(); the stack goes back to that mark.
*/
static void emit(pf *c, int sev, const char *code, const char *field,
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
    return lua_pushfstring(L, "facts.%s was not given", fact_names[f]);
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "facts.%s could not be read", fact_names[f]);
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
        plain = isident((unsigned char)u->code.p[i]) || u->code.p[i] == '.';
      if (u->status > 0)
        luaL_addchar(&b, ' ');
      if (plain)   /* "ServerBusy", as the service spells its codes */
        luaL_addlstring(&b, u->code.p, u->code.n);
      else {
        q(c, u->code);
        luaL_addvalue(&b);
      }
    }
    if (u->message.n > 0) {
      if (u->status > 0 || u->code.n > 0)
        luaL_addstring(&b, ": ");
      q(c, u->message);
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
static void skip(pf *c, int g, const char *field, int f, const char *why) {
  lua_State *L = c->L;
  int saved = c->mark;
  const char *msg, *fix;
  if (c->skipped & (1u << g))
    return;
  c->skipped |= 1u << g;
  begin(c);
  if (why == NULL)
    why = push_why(c, f);
  msg = lua_pushfstring(L, "%s checks skipped: %s", group_names[g], why);
  if (f >= 0 && c->un[f].present && c->un[f].status == 403)
    fix = lua_pushfstring(L, "grant the identity read access to what "
                          "facts.%s reads and run preflight again",
                          fact_names[f]);
  else if (f >= 0)
    fix = lua_pushfstring(L, "read facts.%s and run preflight again",
                          fact_names[f]);
  else
    fix = lua_pushliteral(L, "run preflight again once the facts are "
                          "complete");
  emit(c, SEV_WARNING, "CHECK_SKIPPED", field, msg, fix);
  /* the group, for callers that branch on it */
  lua_rawgeti(L, c->list[SEV_WARNING],
              (lua_Integer)lua_rawlen(L, c->list[SEV_WARNING]));
  lua_pushstring(L, group_names[g]);
  lua_setfield(L, -2, "group");
  lua_pop(L, 1);
  c->mark = saved;
}

/* CHECK_SKIPPED for a reason of our own (printf-like). */
static void skip_for(pf *c, int g, const char *field, const char *fmt, ...) {
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
  skip(c, g, field, -1, lua_tostring(L, -1));
  lua_settop(L, top);
}

static const char *image_field(const pf *c) {
  switch (c->kind) {
    case K_MARKET: return F_IMAGEREF;
    case K_SHARED: return F_SHARED;
    case K_COMMUNITY: return F_COMMUNITY;
    case K_VHD: return c->legacy_vhd ? F_IMAGEURIS : F_IMAGEREF;
    default: return F_VMID;
  }
}

static int is_gallery(const pf *c) {
  return c->kind == K_GVERSION || c->kind == K_GLATEST;
}

/* The image definition's id from a version's id ('.../versions/{v}'). */
static azb_span definition_id(const pf *c) {
  azb_span def = c->img_id, tail = last_segment(c->img_id);
  static const char seg[] = "/versions/";
  size_t n = sizeof seg - 1;
  if (def.p != NULL && def.n >= tail.n + n) {
    azb_span mid;
    mid.p = def.p + def.n - tail.n - n;
    mid.n = n;
    if (span_is(mid, seg))
      def.n -= tail.n + n;
  }
  return def;
}

/* Push the id of the version the region rules judge, for a command. */
static const char *push_version_id(pf *c) {
  lua_State *L = c->L;
  if (c->kind == K_GVERSION && c->img_id.p != NULL)
    return qid(c, c->img_id);
  if (c->ver.id.p != NULL && id_subscription(c->ver.id).p != NULL)
    return qid(c, c->ver.id);
  if (c->img_id.p != NULL) {
    azb_span def = definition_id(c), all;
    const char *s;
    lua_pushlstring(L, def.p, def.n);
    lua_pushliteral(L, "/versions/");
    lua_pushlstring(L, c->ver.name.p != NULL ? c->ver.name.p : "",
                    c->ver.name.n);
    lua_concat(L, 3);
    all.p = lua_tolstring(L, -1, &all.n);
    qid(c, all);
    lua_remove(L, -2);
    s = lua_tostring(L, -1);
    return s;
  }
  return lua_pushliteral(L, "<version id>");
}

/* }====================================================== */


/*
** {======================================================
** The rules, in the order their findings appear
** =======================================================
*/

/* A path or URL without its query (a SAS token is a secret). */
static azb_span no_query(azb_span s) {
  for (size_t i = 0; s.p != NULL && i < s.n; i++)
    if (s.p[i] == '?' || s.p[i] == '#') {
      s.n = i;
      break;
    }
  return s;
}

/* Push a managed image name made from a blob URL ("base.vhd" -> "base"). */
static const char *push_vhd_name(pf *c, azb_span url) {
  lua_State *L = c->L;
  azb_span base = last_segment(no_query(url));
  luaL_Buffer b;
  size_t n = 0;
  if (span_ends(base, ".vhd"))
    base.n -= 4;
  luaL_buffinit(L, &b);
  for (size_t i = 0; base.p != NULL && i < base.n && n < 80; i++) {
    int ch = (unsigned char)base.p[i];
    if (isdigit_(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (n > 0 && (ch == '-' || ch == '_' || ch == '.'))) {
      luaL_addchar(&b, (char)ch);
      n++;
    }
  }
  if (n == 0)
    luaL_addstring(&b, "<name>");
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static void rule_kind(pf *c) {
  lua_State *L = c->L;
  const char *msg, *fix;
  if (c->latest_id) {
    azb_span def = definition_id(c);
    begin(c);
    msg = lua_pushliteral(L, "an id ending in '/versions/latest' is not one "
                          "Batch takes; the image definition's id stands "
                          "for its latest version");
    if (def.p != NULL && def.n > 0)
      fix = lua_pushfstring(L, "set virtualMachineImageId to %s",
                            qid(c, def));
    else
      fix = lua_pushliteral(L, "name the image definition "
                            "('.../galleries/{gallery}/images/{definition}')");
    emit(c, SEV_ERROR, "IMAGE_LATEST_ID", F_VMID, msg, fix);
  }
  if (c->kind == K_VHD || c->legacy_vhd) {
    azb_span url = c->img_uri.p != NULL ? c->img_uri : c->vhd_uri;
    const char *name, *blob;
    begin(c);
    msg = lua_pushliteral(L, "Batch no longer creates pools from a VHD "
                          "blob; it takes a managed image or an Azure "
                          "Compute Gallery version made from the VHD");
    name = push_vhd_name(c, url);
    blob = url.p != NULL ? qid(c, no_query(url)) : "<url>";
    fix = lua_pushfstring(L, "make a managed image from the blob: azbatch "
                          "image from-vhd --blob %s --name %s, then name its "
                          "id in virtualMachineImageId", blob, name);
    emit(c, SEV_ERROR, "IMAGE_VHD", c->legacy_vhd ? F_IMAGEURIS :
         image_field(c), msg, fix);
  }
}

/* The old VHD flow's account and storage rules (warnings). */
static void rule_vhd(pf *c) {
  lua_State *L = c->L;
  const char *field = c->legacy_vhd ? F_IMAGEURIS : image_field(c), *msg, *fix;
  if (c->kind != K_VHD && !c->legacy_vhd)
    return;
  if (!c->sa)
    skip(c, G_STORAGE, field, U_STORAGE, NULL);
  else if (!c->acct)
    skip(c, G_STORAGE, field, U_ACCOUNT, NULL);
  else {
    azb_span sasub = id_subscription(c->sa_id);
    if (sasub.p != NULL && c->acct_sub.p != NULL &&
        !span_ieq(sasub, c->acct_sub)) {
      begin(c);
      msg = lua_pushfstring(L, "the VHD's storage account is in subscription "
                            "%s, the Batch account in %s; the old VHD flow "
                            "needed them in one subscription", q(c, sasub),
                            q(c, c->acct_sub));
      fix = lua_pushfstring(L, "copy the blob to a storage account in "
                            "subscription %s before azbatch image from-vhd",
                            q(c, c->acct_sub));
      emit(c, SEV_WARNING, "VHD_STORAGE_SUBSCRIPTION", field, msg, fix);
    }
    if (c->sa_loc.p != NULL && c->acct_loc.p != NULL &&
        !region_eq(c->sa_loc, c->acct_loc)) {
      begin(c);
      msg = lua_pushfstring(L, "the VHD's storage account is in %s, the "
                            "Batch account in %s; a managed image is made "
                            "in its blob's region and Batch needs it in the "
                            "account's", q(c, c->sa_loc), q(c, c->acct_loc));
      fix = lua_pushfstring(L, "copy the blob to a storage account in %s "
                            "before azbatch image from-vhd",
                            q(c, c->acct_loc));
      emit(c, SEV_WARNING, "VHD_STORAGE_REGION", field, msg, fix);
    }
  }
  if (!c->acct)
    skip(c, G_MODE, NULL, U_ACCOUNT, NULL);
  else if (c->acct_mode.p != NULL &&
           !span_is(c->acct_mode, "UserSubscription")) {
    begin(c);
    msg = lua_pushfstring(L, "the old VHD flow needed a Batch account in "
                          "UserSubscription pool allocation mode; %s is in "
                          "%s mode", q(c, c->acct_name), q(c, c->acct_mode));
    fix = lua_pushliteral(L, "use a managed image or gallery version made "
                          "from the VHD instead: they work in either mode");
    emit(c, SEV_WARNING, "VHD_ACCOUNT_MODE", NULL, msg, fix);
  }
}

static const char ENTRA_FIX[] =
  "authenticate with Microsoft Entra ID: unset AZURE_BATCH_ACCESS_KEY and "
  "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or use a "
  "managed identity)";

static void rule_credential(pf *c) {
  lua_State *L = c->L;
  const char *msg;
  if (c->shared_key && (is_gallery(c) || c->kind == K_MANAGED)) {
    begin(c);
    msg = lua_pushfstring(L, "Shared Key cannot create a pool from a %s "
                          "image; the service answers \"The specified type "
                          "of authentication SharedKey is not allowed when "
                          "external resources of type Compute are linked.\"",
                          c->kind == K_MANAGED ? "managed" : "gallery");
    emit(c, SEV_ERROR, "AUTH_SHARED_KEY_REFUSED", image_field(c), msg,
         ENTRA_FIX);
  }
  if (c->shared_key) {
    if (!c->acct)
      skip(c, G_MODE, NULL, U_ACCOUNT, NULL);
    else if (span_is(c->acct_mode, "UserSubscription")) {
      begin(c);
      msg = lua_pushfstring(L, "the Batch account %s is in UserSubscription "
                            "pool allocation mode, where clients must use "
                            "Microsoft Entra ID, not Shared Key",
                            q(c, c->acct_name));
      emit(c, SEV_ERROR, "AUTH_USER_SUBSCRIPTION", NULL, msg, ENTRA_FIX);
    }
  }
  if (c->modes_known && (c->shared_key ? !c->mode_shared : !c->mode_aad)) {
    begin(c);
    msg = lua_pushfstring(L, "the Batch account %s does not allow %s "
                          "authentication (allowedAuthenticationModes)",
                          q(c, c->acct_name),
                          c->shared_key ? "SharedKey" : "AAD");
    emit(c, SEV_ERROR, "AUTH_MODE_NOT_ALLOWED", NULL, msg,
         c->shared_key ? ENTRA_FIX : "add AAD to the account's "
         "allowedAuthenticationModes, or use its Shared Key");
  }
}

/* The facts the image kind's rules read. */
static int needs_fact(const pf *c, int f) {
  switch (f) {
    case U_DEF: return is_gallery(c);
    case U_VERSION: return c->kind == K_GVERSION;
    case U_VERSIONS: return c->kind == K_GLATEST;
    case U_MANAGED: return c->kind == K_MANAGED;
    default: return 0;
  }
}

static int have_fact(const pf *c, int f) {
  switch (f) {
    case U_DEF: return c->def;
    case U_VERSION: return c->ver.present;
    case U_VERSIONS: return c->versions;
    case U_MANAGED: return c->mi;
    default: return 0;
  }
}

static int unread_with(const pf *c, int f, long long status) {
  return needs_fact(c, f) && !have_fact(c, f) && c->un[f].present &&
         c->un[f].status == status;
}

static void rule_access(pf *c) {
  lua_State *L = c->L;
  const char *msg;
  int d_def = unread_with(c, U_DEF, 403), d_ver = unread_with(c, U_VERSION, 403),
      d_list = unread_with(c, U_VERSIONS, 403),
      d_mi = unread_with(c, U_MANAGED, 403);
  if (d_def || d_ver || d_list || d_mi) {
    begin(c);
    msg = lua_pushfstring(L, "reading the %s was refused (HTTP 403); the "
                          "identity that creates the pool needs the same "
                          "reads, or Batch refuses the pool with "
                          "LinkedAuthorizationFailed",
                          d_mi ? "managed image" : d_ver ? "image version" :
                          d_list ? "image's versions" : "image definition");
    emit(c, SEV_ERROR, "IMAGE_ACCESS_DENIED", image_field(c), msg, d_mi ?
         "grant the identity that creates the pool "
         "Microsoft.Compute/images/read on the managed image (the Reader "
         "role has it)" :
         "grant the identity that creates the pool "
         "Microsoft.Compute/galleries/read, "
         "Microsoft.Compute/galleries/images/read and "
         "Microsoft.Compute/galleries/images/versions/read on the gallery "
         "(the Reader role has them)");
  }
  if (unread_with(c, U_DEF, 404)) {
    begin(c);
    msg = lua_pushfstring(L, "the image definition %s does not exist "
                          "(HTTP 404)", q(c, definition_id(c)));
    emit(c, SEV_ERROR, "IMAGE_DEFINITION_NOT_FOUND", F_VMID, msg,
         "check the gallery and definition names in the id");
  }
  else if (unread_with(c, U_VERSION, 404)) {
    begin(c);
    msg = lua_pushfstring(L, "the image version %s does not exist "
                          "(HTTP 404)", q(c, c->img_id));
    emit(c, SEV_ERROR, "IMAGE_VERSION_NOT_FOUND", F_VMID, msg,
         "check the version in the id; the image definition's id stands "
         "for its latest version");
  }
  if (unread_with(c, U_MANAGED, 404)) {
    begin(c);
    msg = lua_pushfstring(L, "the managed image %s does not exist "
                          "(HTTP 404)", q(c, c->img_id));
    emit(c, SEV_ERROR, "MANAGED_IMAGE_NOT_FOUND", F_VMID, msg,
         "check the id, or make the image: azbatch image from-vhd --blob "
         "<url> --name <name>");
  }
}

static void rule_subscription(pf *c) {
  lua_State *L = c->L;
  const char *msg, *fix;
  if (!is_gallery(c) && c->kind != K_MANAGED)
    return;
  if (!c->acct)
    skip(c, G_SUBSCRIPTION, F_VMID, U_ACCOUNT, NULL);
  else if (c->acct_sub.p == NULL)
    skip_for(c, G_SUBSCRIPTION, F_VMID, "the Batch account's id names no "
             "subscription");
  else if (c->img_sub.p == NULL)
    skip_for(c, G_SUBSCRIPTION, F_VMID, "the image's subscription is "
             "unknown");
  else if (!span_ieq(c->acct_sub, c->img_sub)) {
    begin(c);
    msg = lua_pushfstring(L, "the image is in subscription %s, the Batch "
                          "account %s in %s; Batch needs the %s in the "
                          "account's subscription", q(c, c->img_sub),
                          q(c, c->acct_name), q(c, c->acct_sub),
                          c->kind == K_MANAGED ? "managed image" : "gallery");
    fix = lua_pushfstring(L, "publish the image to a gallery in subscription "
                          "%s (or use a Batch account of subscription %s)",
                          q(c, c->acct_sub), q(c, c->img_sub));
    emit(c, SEV_ERROR, "IMAGE_SUBSCRIPTION", F_VMID, msg, fix);
  }
}

static void rule_latest(pf *c) {
  lua_State *L = c->L;
  luaL_Buffer b;
  const char *msg, *fix;
  if (c->kind != K_GLATEST || unread_with(c, U_DEF, 404) ||
      unread_with(c, U_VERSIONS, 403))
    return;
  if (!c->versions) {
    skip(c, G_LATEST, F_VMID, U_VERSIONS, NULL);
    return;
  }
  begin(c);
  luaL_buffinit(L, &b);
  if (c->latest.p == NULL) {
    lua_pushfstring(L, "no version of the image definition can be 'latest': "
                    "%d version(s)", c->nversions);
    luaL_addvalue(&b);
    if (c->nexcluded > 0) {
      lua_pushfstring(L, ", %d excluded from latest", c->nexcluded);
      luaL_addvalue(&b);
    }
    if (c->nfailed > 0) {
      lua_pushfstring(L, ", %d failed", c->nfailed);
      luaL_addvalue(&b);
    }
    if (c->nother > 0) {
      lua_pushfstring(L, ", %d not named major.minor.patch", c->nother);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    emit(c, SEV_ERROR, "IMAGE_LATEST_NONE", F_VMID, lua_tostring(L, -1),
         "publish a version that is not excluded from latest, or name a "
         "version id ('.../versions/{version}')");
    return;
  }
  lua_pushfstring(L, "'latest' resolves to version %s, the highest of %d "
                  "version%s", q(c, c->latest), c->nversions,
                  c->nversions == 1 ? "" : "s");
  lua_remove(L, -2);
  luaL_addvalue(&b);
  if (c->nexcluded > 0) {
    luaL_addstring(&b, "; excluded from latest: ");
    for (int i = 0; i < c->nexcluded && i < NAMES_SHOWN; i++) {
      if (i > 0)
        luaL_addstring(&b, ", ");
      q(c, c->excluded[i]);
      luaL_addvalue(&b);
    }
    if (c->nexcluded > NAMES_SHOWN) {
      lua_pushfstring(L, " (and %d more)", c->nexcluded - NAMES_SHOWN);
      luaL_addvalue(&b);
    }
  }
  if (c->nfailed > 0) {
    lua_pushfstring(L, "; %d failed", c->nfailed);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  msg = lua_tostring(L, -1);
  fix = lua_pushfstring(L, "to pin it, set virtualMachineImageId to %s",
                        push_version_id(c));
  emit(c, SEV_INFO, "IMAGE_LATEST_RESOLVED", F_VMID, msg, fix);
}

/* Push "'a', 'b' (and N more)" naming the version's target regions. */
static const char *push_regions(pf *c) {
  lua_State *L = c->L;
  luaL_Buffer b;
  const version *v = &c->ver;
  luaL_buffinit(L, &b);
  if (v->nregions == 0)
    luaL_addstring(&b, "none");
  for (int i = 0; i < v->nregions && i < REGIONS_SHOWN; i++) {
    if (i > 0)
      luaL_addstring(&b, ", ");
    q(c, v->regions[i]);
    luaL_addvalue(&b);
  }
  if (v->nregions > REGIONS_SHOWN) {
    lua_pushfstring(L, " (and %d more)", v->nregions - REGIONS_SHOWN);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

static void rule_managed_region(pf *c) {
  lua_State *L = c->L;
  const char *msg, *fix;
  if (!c->acct)
    skip(c, G_REGION, F_VMID, U_ACCOUNT, NULL);
  else if (c->acct_loc.p == NULL || c->mi_loc.p == NULL)
    skip_for(c, G_REGION, F_VMID, "the %s location is unknown",
             c->acct_loc.p == NULL ? "Batch account's" : "managed image's");
  else if (!region_eq(c->acct_loc, c->mi_loc)) {
    begin(c);
    msg = lua_pushfstring(L, "the managed image %s is in %s, the Batch "
                          "account in %s; Batch needs it in the account's "
                          "region", q(c, c->mi_name), q(c, c->mi_loc),
                          q(c, c->acct_loc));
    fix = lua_pushfstring(L, "make the managed image in %s, or publish it to "
                          "a gallery version replicated there",
                          q(c, c->acct_loc));
    emit(c, SEV_ERROR, "MANAGED_IMAGE_REGION", F_VMID, msg, fix);
  }
}

static void rule_replication(pf *c) {
  lua_State *L = c->L;
  const version *v = &c->ver;
  azb_span st = v->has_state ? v->state : v->aggregated;
  const char *msg, *fix;
  if (!v->has_status) {
    skip_for(c, G_REPLICATION, F_VMID, "version %s was read without its "
             "replicationStatus (GET with $expand=ReplicationStatus)",
             q(c, v->name));
    return;
  }
  begin(c);
  if (span_is(st, "Replicating") || span_is(st, "InProgress")) {
    if (v->progress >= 0)
      msg = lua_pushfstring(L, "version %s is still replicating to %s "
                            "(%d%%); pools cannot use it there until it "
                            "completes", q(c, v->name), q(c, c->acct_loc),
                            (int)v->progress);
    else
      msg = lua_pushfstring(L, "version %s is still replicating to %s; "
                            "pools cannot use it there until it completes",
                            q(c, v->name), q(c, c->acct_loc));
    emit(c, SEV_ERROR, "IMAGE_REPLICATION_INCOMPLETE", F_VMID, msg,
         "wait for the replication to complete, then run preflight again");
  }
  else if (span_is(st, "Failed")) {
    if (v->has_state && v->details.n > 0)
      msg = lua_pushfstring(L, "replication of version %s to %s failed: %s",
                            q(c, v->name), q(c, c->acct_loc),
                            q(c, v->details));
    else
      msg = lua_pushfstring(L, "replication of version %s to %s failed",
                            q(c, v->name), q(c, c->acct_loc));
    fix = lua_pushfstring(L, "replicate it again: azbatch image replicate "
                          "--image %s --nodes %I", push_version_id(c),
                          (LUAI_UACINT)c->nodes);
    emit(c, SEV_ERROR, "IMAGE_REPLICATION_INCOMPLETE", F_VMID, msg, fix);
  }
  else if (!span_is(st, "Completed")) {
    msg = lua_pushfstring(L, "the replication state of version %s in %s is "
                          "%s; pools may not find it there", q(c, v->name),
                          q(c, c->acct_loc), st.p != NULL ? q(c, st) :
                          "not reported");
    emit(c, SEV_WARNING, "IMAGE_REPLICATION_UNKNOWN", F_VMID, msg,
         "read the version again with $expand=ReplicationStatus and run "
         "preflight again");
  }
  else
    lua_settop(L, c->mark);
}

static void rule_region(pf *c) {
  lua_State *L = c->L;
  const version *v = &c->ver;
  const char *msg, *fix;
  long long have;
  if (c->kind == K_MANAGED) {
    if (c->mi)
      rule_managed_region(c);
    return;
  }
  if (!is_gallery(c))
    return;
  if (!v->present) {
    if (c->kind == K_GVERSION && !unread_with(c, U_VERSION, 404) &&
        !unread_with(c, U_DEF, 404))
      skip(c, G_VERSION, F_VMID, U_VERSION, NULL);
    return;   /* latest: rule_latest said why */
  }
  if (!c->acct) {
    skip(c, G_REGION, F_VMID, U_ACCOUNT, NULL);
    return;
  }
  if (c->acct_loc.p == NULL) {
    skip_for(c, G_REGION, F_VMID, "the Batch account's location is unknown");
    return;
  }
  if (!v->in_region) {
    begin(c);
    msg = lua_pushfstring(L, "version %s has no replica in %s, the Batch "
                          "account's region; its target regions: %s",
                          q(c, v->name), q(c, c->acct_loc), push_regions(c));
    fix = lua_pushfstring(L, "replicate it to %s: azbatch image replicate "
                          "--image %s --nodes %I", q(c, c->acct_loc),
                          push_version_id(c), (LUAI_UACINT)c->nodes);
    emit(c, SEV_ERROR, "IMAGE_NO_REPLICA_IN_REGION", F_VMID, msg, fix);
    return;
  }
  rule_replication(c);
  /* one replica per 600 nodes there */
  have = v->region_replicas >= 0 ? v->region_replicas :
         v->replica_count >= 0 ? v->replica_count : 1;
  if (have < c->replicas_needed) {
    begin(c);
    msg = lua_pushfstring(L, "version %s has %I replica%s in %s; a pool of "
                          "%s%I nodes needs %I (one per 600 nodes)",
                          q(c, v->name), (LUAI_UACINT)have,
                          have == 1 ? "" : "s", q(c, c->acct_loc),
                          c->autoscale ? "up to " : "",
                          (LUAI_UACINT)c->nodes,
                          (LUAI_UACINT)c->replicas_needed);
    fix = lua_pushfstring(L, "azbatch image replicate --image %s --nodes %I",
                          push_version_id(c), (LUAI_UACINT)c->nodes);
    emit(c, SEV_WARNING, "IMAGE_REPLICAS_TOO_FEW", F_VMID, msg, fix);
  }
}

/* The image's OS from ARM or the supported images; OS_UNKNOWN else. */
static int image_os(const pf *c) {
  if (c->kind == K_MANAGED)
    return os_value(c->mi_os);
  if (c->kind == K_MARKET)
    return c->market_listed ? c->market_os : OS_UNKNOWN;
  if (c->kind == K_VHD)
    return OS_UNKNOWN;
  return os_value(c->def_os);
}

static int agent_os(azb_span agent) {
  static const char prefix[] = "batch.node.windows";
  azb_span head;
  if (agent.p == NULL || agent.n < sizeof prefix - 1)
    return OS_LINUX;
  head.p = agent.p;
  head.n = sizeof prefix - 1;
  return span_is(head, prefix) ? OS_WINDOWS : OS_LINUX;
}

static const char *os_name(int os) {
  return os == OS_WINDOWS ? "Windows" : "Linux";
}

static void rule_definition(pf *c) {
  lua_State *L = c->L;
  int managed = c->kind == K_MANAGED;
  int optional = c->kind == K_SHARED || c->kind == K_COMMUNITY;
  azb_span state = managed ? c->mi_state : c->def_state;
  const char *msg;
  if (c->kind == K_MARKET || c->kind == K_VHD)
    return;
  if (!(managed ? c->mi : c->def)) {
    int f = managed ? U_MANAGED : U_DEF;
    if ((!optional || c->un[f].present) && !unread_with(c, f, 404) &&
        !unread_with(c, U_VERSION, 404))
      skip(c, managed ? G_MANAGED : G_DEFINITION, image_field(c), f, NULL);
    return;
  }
  if (span_is(state, "Specialized")) {
    begin(c);
    msg = lua_pushfstring(L, "the %s %s is Specialized; Batch makes nodes "
                          "only from Generalized images", managed ?
                          "managed image" : "image definition",
                          q(c, managed ? c->mi_name : c->def_name));
    emit(c, SEV_ERROR, "IMAGE_NOT_GENERALIZED", image_field(c), msg,
         "generalize the source VM (Sysprep on Windows, waagent "
         "-deprovision+user on Linux) and publish it to a definition whose "
         "osState is Generalized");
  }
}

/* The agent the pool ends up with: the given one, else the chosen one. */
static azb_span pool_agent(const pf *c) {
  return c->agent.p != NULL ? c->agent : c->chosen_sku;
}

static const char *push_agent_fix(pf *c, int os) {
  lua_State *L = c->L;
  if (c->chosen_sku.p != NULL)
    return lua_pushfstring(L, "set nodeAgentSKUId to %s",
                           q(c, c->chosen_sku));
  return lua_pushfstring(L, "set nodeAgentSKUId to a %s agent the account "
                         "supports (GET /supportedimages)", os_name(os));
}

/* The chooser's message without its leading "<field>: ". */
static const char *chooser_why(pf *c) {
  const char *m = c->chose ? lua_tostring(c->L, c->reason) : NULL;
  size_t n = sizeof F_AGENT ": " - 1;
  if (m == NULL)
    return "none can be chosen";
  return strncmp(m, F_AGENT ": ", n) == 0 ? m + n : m;
}

static void rule_agent(pf *c) {
  lua_State *L = c->L;
  int ios = image_os(c), os_bad = 0;
  const char *msg, *fix;
  if (c->kind == K_VHD)
    return;
  if (c->agent.p != NULL && ios != OS_UNKNOWN &&
      agent_os(c->agent) != ios) {
    os_bad = 1;
    begin(c);
    msg = lua_pushfstring(L, "%s is a %s agent but the image is %s",
                          q(c, c->agent), os_name(agent_os(c->agent)),
                          os_name(ios));
    fix = push_agent_fix(c, ios);
    emit(c, SEV_ERROR, "NODE_AGENT_OS", F_AGENT, msg, fix);
  }
  if (c->agent.p == NULL) {
    begin(c);
    if (c->chosen_sku.p != NULL) {
      msg = lua_pushfstring(L, "no nodeAgentSKUId given; %s fits: %s",
                            q(c, c->chosen_sku), lua_tostring(L, c->reason));
      fix = lua_pushfstring(L, "nothing to do; set nodeAgentSKUId to %s to "
                            "pin it", q(c, c->chosen_sku));
      emit(c, SEV_INFO, "NODE_AGENT_CHOSEN", F_AGENT, msg, fix);
    }
    else {
      msg = lua_pushfstring(L, "no nodeAgentSKUId given, and %s",
                            chooser_why(c));
      emit(c, SEV_ERROR, "NODE_AGENT_MISSING", F_AGENT, msg,
           "set nodeAgentSKUId to the candidate for the image's OS and "
           "release, or tag the image version with azbatch.nodeAgentSKUId");
    }
    return;
  }
  if (!c->si) {
    skip(c, G_AGENT, F_AGENT, U_SUPPORTED, NULL);
    return;
  }
  if (!c->agent_listed) {
    begin(c);
    msg = lua_pushfstring(L, "%s is not among the node agents the account "
                          "supports (GET /supportedimages)", q(c, c->agent));
    fix = push_agent_fix(c, ios != OS_UNKNOWN ? ios : agent_os(c->agent));
    emit(c, SEV_ERROR, "NODE_AGENT_UNSUPPORTED", F_AGENT, msg, fix);
    return;
  }
  if (!os_bad && c->chosen_sku.p != NULL &&
      !span_ieq(c->chosen_sku, c->agent)) {
    begin(c);
    msg = lua_pushfstring(L, "%s does not fit the image; %s does: %s",
                          q(c, c->agent), q(c, c->chosen_sku),
                          lua_tostring(L, c->reason));
    fix = lua_pushfstring(L, "set nodeAgentSKUId to %s", q(c, c->chosen_sku));
    emit(c, SEV_ERROR, "NODE_AGENT_MISMATCH", F_AGENT, msg, fix);
  }
}

/* "V1" or "V2" when the span says so, else NULL. */
static const char *generation(azb_span s) {
  return span_is(s, "V1") ? "V1" : span_is(s, "V2") ? "V2" : NULL;
}

static const char *image_generation(const pf *c) {
  if (c->kind == K_MANAGED)
    return generation(c->mi_gen);
  if (c->kind == K_MARKET || c->kind == K_VHD)
    return NULL;
  return generation(c->def_gen);
}

/* Is facts.vm_size the pool's size? */
static int vmsize_usable(const pf *c) {
  return c->vs && (c->vmsize.p == NULL || c->vs_name.p == NULL ||
                   span_ieq(c->vmsize, c->vs_name));
}

static void skip_vmsize(pf *c, int g) {
  if (c->vs)
    skip_for(c, g, F_VMSIZE, "facts.vm_size describes %s, not the pool's %s",
             q(c, c->vs_name), q(c, c->vmsize));
  else
    skip(c, g, F_VMSIZE, U_VMSIZE, NULL);
}

static azb_span size_name(const pf *c) {
  return c->vs_name.p != NULL ? c->vs_name : c->vmsize;
}

static void rule_hyperv(pf *c) {
  lua_State *L = c->L;
  const char *gen = image_generation(c), *msg, *fix;
  if (gen == NULL)
    return;   /* marketplace images and definitions that do not say */
  if (!vmsize_usable(c)) {
    skip_vmsize(c, G_HYPERV);
    return;
  }
  if (!c->gens_known) {
    skip_for(c, G_HYPERV, F_VMSIZE, "facts.vm_size has no HyperVGenerations "
             "capability");
    return;
  }
  if ((gen[1] == '1' && !c->gen_v1) || (gen[1] == '2' && !c->gen_v2)) {
    begin(c);
    msg = lua_pushfstring(L, "the image is Hyper-V generation %s but the VM "
                          "size %s runs only %s", gen, q(c, size_name(c)),
                          c->gen_v1 ? "V1" : c->gen_v2 ? "V2" : "neither");
    fix = lua_pushfstring(L, "choose a VM size that supports %s, or an image "
                          "of generation %s", gen, gen[1] == '1' ? "V2" :
                          "V1");
    emit(c, SEV_ERROR, "HYPERV_GENERATION", F_VMSIZE, msg, fix);
  }
}

static const char *push_duration(lua_State *L, double seconds) {
  char buf[64];
  azb_duration_format(seconds, buf, sizeof buf);
  return lua_pushstring(L, buf);
}

/* The pool's size for the rules: targets, or what autoscale can reach. */
static void rule_size(pf *c, long long *bd, long long *bl) {
  lua_State *L = c->L;
  double vd = 0, vl = 0;
  int rd = -1, rl = -1;
  const char *msg;
  *bd = c->ded;
  *bl = c->low;
  if (!c->autoscale)
    return;
  if (c->formula.p != NULL) {
    rd = formula_bound(c->formula.p, c->formula.n, "$TargetDedicatedNodes",
                       &vd);
    rl = formula_bound(c->formula.p, c->formula.n, "$TargetLowPriorityNodes",
                       &vl);
  }
  begin(c);
  if (rd == 0 || rl == 0 || (rd < 0 && rl < 0)) {
    msg = lua_pushfstring(L, "cannot tell the largest size the autoscale "
                          "formula can reach (%s); checked with the current "
                          "targets, %I node(s)", c->formula.p == NULL ?
                          "no formula" : rd < 0 && rl < 0 ?
                          "it assigns neither $TargetDedicatedNodes nor "
                          "$TargetLowPriorityNodes" : rd == 0 ?
                          "no number or min(...) with a number bounds "
                          "$TargetDedicatedNodes" :
                          "no number or min(...) with a number bounds "
                          "$TargetLowPriorityNodes",
                          (LUAI_UACINT)(c->ded + c->low));
    emit(c, SEV_WARNING, "AUTOSCALE_NODES_UNKNOWN", F_FORMULA, msg,
         "bound the targets in the formula, such as $TargetDedicatedNodes = "
         "min($pending, 100);");
    return;
  }
  *bd = rd > 0 ? bound_nodes(vd) : 0;
  *bl = rl > 0 ? bound_nodes(vl) : 0;
  msg = lua_pushfstring(L, "the autoscale formula reaches at most %I "
                        "dedicated and %I low-priority node(s); checked at "
                        "%I node(s)", (LUAI_UACINT)*bd, (LUAI_UACINT)*bl,
                        (LUAI_UACINT)(*bd + *bl));
  emit(c, SEV_INFO, "AUTOSCALE_NODES", F_FORMULA, msg, NULL);
}

static void rule_resize(pf *c) {
  lua_State *L = c->L;
  double given = DEFAULT_RESIZE, need;
  const char *msg, *fix, *g, *n;
  if (c->autoscale)
    return;   /* the service ignores resizeTimeout for autoscale pools */
  need = azb_plan_resize_timeout((lua_Integer)c->nodes);
  if (c->resize_given) {
    const char *why = c->resize.p == NULL ? "not a string" :
                      azb_duration_parse(c->resize.p, c->resize.n, &given);
    if (why != NULL) {
      skip_for(c, G_RESIZE, F_RESIZE, "pool.resizeTimeout is not an "
               "ISO-8601 duration (%s)", why);
      return;
    }
  }
  if (given >= need)
    return;
  begin(c);
  g = push_duration(L, given);
  n = push_duration(L, need);
  msg = lua_pushfstring(L, "resizeTimeout %s%s is short for %I nodes; allow "
                        "15 minutes per 1000 nodes: %s", g, c->resize_given ?
                        "" : " (the default)", (LUAI_UACINT)c->nodes, n);
  fix = lua_pushfstring(L, "set resizeTimeout to %s", n);
  emit(c, SEV_WARNING, "RESIZE_TIMEOUT_SHORT", F_RESIZE, msg, fix);
}

/*
** One core quota: this pool's cores plus what other pools use, against
** the quota; 'kind' is "dedicated" or "low-priority", 'quota_name' names
** the quota in the message (a string on the stack or a literal), and
** 'target' the pool field ("targetDedicatedNodes") whose formula variable
** is the same name with '$' and a capital.
*/
static void core_quota(pf *c, const char *code, const char *kind,
                       const char *quota_name, const char *target,
                       long long nodes, long long used, long long quota) {
  lua_State *L = c->L;
  long long need = nodes * c->vcpus, fit;
  const char *msg, *fix, *others = "";
  if (used < 0)
    used = 0;
  if (quota < 0 || nodes == 0 || need + used <= quota)
    return;
  fit = (quota - used) / c->vcpus;
  if (fit < 0)
    fit = 0;
  begin(c);
  if (used > 0)
    others = lua_pushfstring(L, " and other pools use %I",
                             (LUAI_UACINT)used);
  msg = lua_pushfstring(L, "%s%I %s node%s of %s need %I cores%s; the "
                        "account's %s is %I", c->autoscale ? "up to " : "",
                        (LUAI_UACINT)nodes, kind, nodes == 1 ? "" : "s",
                        q(c, size_name(c)), (LUAI_UACINT)need, others,
                        quota_name, (LUAI_UACINT)quota);
  if (c->autoscale)
    fix = lua_pushfstring(L, "request a quota increase (Azure portal: Batch "
                          "account, Quotas) or bound $T%s in the formula at "
                          "%I", target + 1, (LUAI_UACINT)fit);
  else
    fix = lua_pushfstring(L, "request a quota increase (Azure portal: Batch "
                          "account, Quotas) or reduce %s to %I", target,
                          (LUAI_UACINT)fit);
  emit(c, c->autoscale ? SEV_WARNING : SEV_ERROR, code,
       c->autoscale ? F_FORMULA : lua_pushfstring(L, "pool.%s", target),
       msg, fix);
}

static void rule_quota(pf *c, long long ded, long long low) {
  lua_State *L = c->L;
  const char *msg;
  if (!c->acct) {
    skip(c, G_QUOTA, NULL, U_ACCOUNT, NULL);
    return;
  }
  if (span_is(c->acct_mode, "UserSubscription")) {
    begin(c);
    msg = lua_pushfstring(L, "the Batch account %s allocates pools in its "
                          "subscription (UserSubscription mode), whose core "
                          "quotas preflight does not read",
                          q(c, c->acct_name));
    emit(c, SEV_INFO, "QUOTA_SUBSCRIPTION", NULL, msg, "check the "
         "subscription's vCPU quotas for the VM family in the account's "
         "region");
    return;
  }
  if (!c->usage)
    skip(c, G_USAGE, NULL, U_USAGE, NULL);
  if (c->u_pools >= 0 && c->q_pools >= 0 && c->u_pools >= c->q_pools) {
    begin(c);
    msg = lua_pushfstring(L, "the Batch account %s has %I pool(s) and its "
                          "pool quota is %I", q(c, c->acct_name),
                          (LUAI_UACINT)c->u_pools, (LUAI_UACINT)c->q_pools);
    emit(c, SEV_ERROR, "QUOTA_POOLS", NULL, msg, "request a quota increase "
         "(Azure portal: Batch account, Quotas) or delete a pool the account "
         "no longer needs");
  }
  if (!vmsize_usable(c)) {
    skip_vmsize(c, G_QUOTA);
    return;
  }
  if (c->vcpus < 0) {
    skip_for(c, G_QUOTA, F_VMSIZE, "facts.vm_size has no vCPUs capability");
    return;
  }
  if (c->q_ded < 0 && c->q_low < 0) {
    skip_for(c, G_QUOTA, NULL, "the Batch account's properties carry no "
             "core quotas");
    return;
  }
  core_quota(c, "QUOTA_DEDICATED_CORES", "dedicated", "dedicated core quota",
             "targetDedicatedNodes", ded, c->u_ded, c->q_ded);
  if (c->fam_enforced && ded > 0) {
    if (c->q_fam < 0)
      skip_for(c, G_QUOTA, F_VMSIZE, "the VM family %s is not in the "
               "account's dedicatedCoreQuotaPerVMFamily", q(c, c->vs_family));
    else {
      int top = lua_gettop(L);
      core_quota(c, "QUOTA_VM_FAMILY_CORES", "dedicated",
                 lua_pushfstring(L, "dedicated core quota for the VM family "
                                 "%s", q(c, c->vs_family)),
                 "targetDedicatedNodes", ded, c->u_fam, c->q_fam);
      lua_settop(L, top);
    }
  }
  core_quota(c, "QUOTA_LOW_PRIORITY_CORES", "low-priority",
             "low-priority core quota", "targetLowPriorityNodes", low,
             c->u_low, c->q_low);
}

/* Push "on 2025-03-01 (in 20 days)" or "on ... (40 days ago)". */
static const char *push_when(pf *c, double t) {
  char date[16];
  double days = (t - c->now) / DAY;
  format_date(t, date);
  if (days >= 1)
    return lua_pushfstring(c->L, "on %s (in %d days)", date,
                           (int)(days + 0.999999));
  if (days > -1)
    return lua_pushfstring(c->L, "on %s (today)", date);
  return lua_pushfstring(c->L, "on %s (%d days ago)", date, (int)-days);
}

static void image_eol(pf *c, azb_span eol, const char *what, azb_span name) {
  lua_State *L = c->L;
  const char *msg;
  double t;
  if (eol.p == NULL)
    return;
  if (!parse_time(eol, &t)) {
    skip_for(c, G_EOL, F_VMID, "the %s's endOfLifeDate %s is not a date",
             what, q(c, eol));
    return;
  }
  if (t - c->now > EOL_WARN_DAYS * DAY)
    return;
  begin(c);
  msg = lua_pushfstring(L, "the %s %s %s its end of life %s", what,
                        q(c, name), t <= c->now ? "reached" : "reaches",
                        push_when(c, t));
  emit(c, SEV_WARNING, "IMAGE_END_OF_LIFE", image_field(c), msg,
       "publish a newer image version and roll the pool to it");
}

static void rule_eol(pf *c) {
  lua_State *L = c->L;
  azb_span agent = pool_agent(c);
  double t = 0;
  int known = 0;
  const char *msg;
  if (is_gallery(c) && c->ver.present)
    image_eol(c, c->ver.eol, "image version", c->ver.name);
  if ((is_gallery(c) || c->kind == K_SHARED || c->kind == K_COMMUNITY) &&
      c->def)
    image_eol(c, c->def_eol, "image definition", c->def_name);
  if (agent.p == NULL || !c->si)
    return;
  if (c->kind == K_MARKET && c->market_listed) {
    if (c->market_eol.p == NULL)
      return;
    if (!parse_time(c->market_eol, &t)) {
      skip_for(c, G_EOL, F_AGENT, "the supported image's "
               "batchSupportEndOfLife %s is not a date", q(c, c->market_eol));
      return;
    }
    known = 1;
  }
  else if (c->agent_eol_known) {
    t = c->agent_eol;
    known = 1;
  }
  if (!known || t - c->now > EOL_WARN_DAYS * DAY)
    return;
  begin(c);
  if (t <= c->now) {
    msg = lua_pushfstring(L, "Batch support for %s%s ended %s; the service "
                          "no longer accepts new pools with it", q(c, agent),
                          c->kind == K_MARKET ? " with this image" : "",
                          push_when(c, t));
    emit(c, SEV_ERROR, "NODE_AGENT_RETIRED", F_AGENT, msg, "move to an "
         "image and agent the account still supports (GET "
         "/supportedimages)");
  }
  else {
    msg = lua_pushfstring(L, "Batch support for %s%s ends %s; then the "
                          "service stops accepting new pools with it",
                          q(c, agent), c->kind == K_MARKET ?
                          " with this image" : "", push_when(c, t));
    emit(c, SEV_WARNING, "NODE_AGENT_END_OF_LIFE", F_AGENT, msg, "plan the "
         "move to an image and agent with longer support (GET "
         "/supportedimages)");
  }
}

/* }====================================================== */


/*
** {======================================================
** core.preflight
** =======================================================
*/

static void set_int(lua_State *L, int t, const char *k, long long v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, t, k);
}

static void set_span(lua_State *L, int t, const char *k, azb_span s) {
  if (s.p == NULL)
    return;
  lua_pushlstring(L, s.p, s.n);
  lua_setfield(L, t, k);
}

/* Ask core.choose_node_agent (upvalue 1); leaves its three results. */
static void ask_chooser(pf *c) {
  lua_State *L = c->L;
  luaL_checkstack(L, 8, NULL);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_call(L, 1, 3);
  c->chose = 1;
  c->chosen = lua_gettop(L) - 2;
  c->reason = c->chosen + 1;
  if (lua_type(L, c->chosen) == LUA_TSTRING)
    c->chosen_sku.p = lua_tolstring(L, c->chosen, &c->chosen_sku.n);
}

/*
** core.preflight(facts) -> findings, derived
** (raises only on misuse: facts not a table, or a top-level fact of the
** wrong Lua type)
*/
static int preflight(lua_State *L) {
  pf c;
  int img, pool, si, win = 0, result, d;
  long long bd, bl;
  azb_span cred;
  memset(&c, 0, sizeof c);
  c.L = L;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_checkstack(L, 64, NULL);
  if (getf(L, 1, "now") != LUA_TNUMBER)
    return luaL_argerror(L, 1, lua_pushfstring(L, "facts.now: number "
                         "expected, got %s", luaL_typename(L, -1)));
  c.now = (double)lua_tonumber(L, -1);
  if (!(c.now > -1e13 && c.now < 1e13))
    return luaL_argerror(L, 1, "facts.now: finite number of seconds "
                         "expected");
  lua_pop(L, 1);
  pool = fact_table(L, "pool", 0);
  cred = sfield(L, 1, "credential");
  if (span_is(cred, "shared_key"))
    c.shared_key = 1;
  else if (!span_is(cred, "entra"))
    return luaL_argerror(L, 1, "facts.credential: expected 'shared_key' or "
                         "'entra'");
  img = fact_table(L, "image", 0);
  read_image(&c, img);
  read_pool(&c, pool);
  /* type-check every optional fact before any is used */
  {
    int idx[NFACTS];
    for (int f = 0; f < NFACTS; f++)
      idx[f] = fact_table(L, fact_names[f], 1);
    read_unread(&c);
    read_vmsize(&c, idx[U_VMSIZE]);
    read_account(&c, idx[U_ACCOUNT]);
    read_usage(&c, idx[U_USAGE]);
    read_definition(&c, idx[U_DEF]);
    read_managed(&c, idx[U_MANAGED]);
    read_storage(&c, idx[U_STORAGE]);
    if (c.kind == K_GVERSION && idx[U_VERSION] != 0)
      read_version(&c, idx[U_VERSION], &c.ver);
    else if (c.kind == K_GLATEST && idx[U_VERSIONS] != 0) {
      read_versions(&c, idx[U_VERSIONS], &win);
      if (win != 0) {
        /* the version read alone carries its replication status */
        if (idx[U_VERSION] != 0) {
          version one;
          read_version(&c, idx[U_VERSION], &one);
          if (span_ieq(one.name, c.latest))
            win = idx[U_VERSION];
        }
        read_version(&c, win, &c.ver);
      }
    }
    si = idx[U_SUPPORTED];
  }
  if (c.kind != K_VHD && (si != 0 || c.agent.p == NULL))
    ask_chooser(&c);
  {
    azb_span pub = { NULL, 0 }, offer = { NULL, 0 }, sku = { NULL, 0 };
    if (c.kind == K_MARKET) {
      pub = sfield(L, img, "publisher");
      offer = sfield(L, img, "offer");
      sku = sfield(L, img, "sku");
    }
    read_supported(&c, si, pool_agent(&c), pub, offer, sku);
  }

  /* the findings, by severity */
  for (int s = 0; s < NSEV; s++) {
    lua_newtable(L);
    c.list[s] = lua_gettop(L);
  }
  rule_kind(&c);
  rule_vhd(&c);
  rule_credential(&c);
  rule_access(&c);
  rule_subscription(&c);
  rule_size(&c, &bd, &bl);
  c.nodes = bd + bl;
  c.replicas_needed = (long long)azb_plan_replicas((lua_Integer)c.nodes);
  rule_latest(&c);
  rule_region(&c);
  rule_definition(&c);
  rule_agent(&c);
  rule_hyperv(&c);
  rule_resize(&c);
  rule_quota(&c, bd, bl);
  rule_eol(&c);

  lua_createtable(L, 0, 0);
  result = lua_gettop(L);
  if (luaL_getmetatable(L, AZB_ARRAY) == LUA_TTABLE)
    lua_setmetatable(L, result);
  else
    lua_pop(L, 1);
  for (int s = 0; s < NSEV; s++) {
    size_t n = lua_rawlen(L, c.list[s]);
    for (size_t i = 1; i <= n; i++) {
      lua_rawgeti(L, c.list[s], (lua_Integer)i);
      lua_rawseti(L, result, (lua_Integer)lua_rawlen(L, result) + 1);
    }
  }

  /* derived */
  lua_createtable(L, 0, 9);
  d = lua_gettop(L);
  set_int(L, d, "nodes", c.nodes);
  set_int(L, d, "replicas_needed", c.replicas_needed);
  if (!c.autoscale) {
    push_duration(L, azb_plan_resize_timeout((lua_Integer)c.nodes));
    lua_setfield(L, d, "resize_timeout_needed");
  }
  if (c.kind == K_GLATEST)
    set_span(L, d, "latest_version", c.latest);
  if (image_os(&c) != OS_UNKNOWN) {
    lua_pushstring(L, image_os(&c) == OS_WINDOWS ? "windows" : "linux");
    lua_setfield(L, d, "image_os");
  }
  if (image_generation(&c) != NULL) {
    lua_pushstring(L, image_generation(&c));
    lua_setfield(L, d, "hyperv_generation");
  }
  if (vmsize_usable(&c) && c.vcpus > 0)
    set_int(L, d, "cores_needed", (bd + bl) * c.vcpus);
  set_span(L, d, "node_agent", pool_agent(&c));
  return 2;
}

/* }====================================================== */


void azb_preflight_open(lua_State *L) {
  lua_getfield(L, -1, "choose_node_agent");
  if (!lua_isfunction(L, -1))
    luaL_error(L, "azbatch.core: the preflight needs choose_node_agent "
               "registered first");
  lua_pushcclosure(L, preflight, 1);
  lua_setfield(L, -2, "preflight");
}
