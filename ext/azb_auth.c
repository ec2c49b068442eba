/*
** azb_auth.c: Shared Key signing for the Batch data plane (the
** string-to-sign of design.md "On the wire", HMAC-SHA256 via OpenSSL).
*/
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "azb.h"

typedef struct SharedKey {
  unsigned char *key;      /* decoded key bytes; NULL once released */
  size_t keylen;
  int closed;
} SharedKey;

/* User value 1 of a SharedKey: the account name. */
#define UV_ACCOUNT 1

/* The standard headers, one line each, in string-to-sign order. */
static const char *const std_headers[] = {
  "Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
  "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
  "If-Unmodified-Since", "Range"
};
#define NSTD (sizeof std_headers / sizeof std_headers[0])


/*
** {======================================================
** String to sign
** =======================================================
*/

typedef struct qpair {
  const char *name, *value;
  size_t nlen, vlen;
} qpair;

static int lowerc(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int spancmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  return c != 0 ? c : (an < bn ? -1 : an > bn);
}

static int qpair_cmp(const void *x, const void *y) {
  const qpair *a = (const qpair *)x, *b = (const qpair *)y;
  int c = spancmp(a->name, a->nlen, b->name, b->nlen);
  return c != 0 ? c : spancmp(a->value, a->vlen, b->value, b->vlen);
}

/* Compare header names ignoring ASCII case. */
static int hname_cmp(const azb_header *a, const azb_header *b) {
  size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
  for (size_t i = 0; i < n; i++) {
    int c = lowerc((unsigned char)a->name[i]) - lowerc((unsigned char)b->name[i]);
    if (c != 0)
      return c;
  }
  return a->nlen < b->nlen ? -1 : a->nlen > b->nlen;
}

static int hptr_cmp(const void *x, const void *y) {
  return hname_cmp(*(const azb_header *const *)x, *(const azb_header *const *)y);
}

static int hname_is(const azb_header *h, const char *name) {
  return strlen(name) == h->nlen && azb_strnieq(h->name, name, h->nlen);
}

/*
** Path and raw query as libcurl will send them (it percent-encodes
** bytes above 0x7f in the path: CURLU_URLENCODE does the same), copied
** into 'scratch' (4 * (len + 2) bytes) so the CURLU is freed before any
** Lua call. Returns NULL or why the URL is refused.
*/
static const char *url_parts(const char *url, size_t len, char *scratch,
                             const char **path, const char **query) {
  static char const bad[] = "malformed URL";
  char *p = NULL, *q = NULL;
  const char *why = NULL;
  CURLU *u = curl_url();
  if (u == NULL)
    return "out of memory";
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PATH, &p, CURLU_URLENCODE) != CURLUE_OK)
    why = bad;
  else {
    curl_url_get(u, CURLUPART_QUERY, &q, 0);   /* absent is fine */
    if (strlen(p) > 3 * len + 1 || (q != NULL && strlen(q) > len))
      why = bad;   /* cannot happen: at most every byte becomes %XX */
    else {
      strcpy(scratch, p);
      *path = scratch;
      scratch += strlen(p) + 1;
      strcpy(scratch, q ? q : "");
      *query = scratch;
    }
  }
  curl_free(p);
  curl_free(q);
  curl_url_cleanup(u);
  return why;
}

/*
** Push the string to sign. Returns 1, or pushes fail and returns 3.
** Stack on entry: account string at 'acct'.
*/
static int push_sts(lua_State *L, int acct, int imethod, int iurl, int ihdr) {
  size_t mlen, ulen, alen, qlen, np = 0;
  const char *method = luaL_checklstring(L, imethod, &mlen);
  const char *url = luaL_checklstring(L, iurl, &ulen);
  const char *account = lua_tolstring(L, acct, &alen);
  const char *path = NULL, *query = NULL, *why;
  const azb_header *found[NSTD];
  const azb_header **ocp;
  azb_header *hs;
  size_t nocp = 0;
  char *scratch, *dec;
  qpair *pairs;
  luaL_Buffer b;
  int nh;
  if (!lua_isnoneornil(L, ihdr))
    luaL_checktype(L, ihdr, LUA_TTABLE);
  if (mlen == 0 || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "abcdefghijklmnopqrstuvwxyz") != mlen)
    return azb_fail(L, "validation", "method",
                    "shared key: method must be letters only");
  /* scratch: pairs, then path + query copies, then the decoded query */
  pairs = (qpair *)lua_newuserdatauv(L, sizeof(qpair) * (ulen / 2 + 2) +
                                     5 * (ulen + 2), 0);
  scratch = (char *)(pairs + ulen / 2 + 2);
  why = url_parts(url, ulen, scratch, &path, &query);
  if (why != NULL)
    return azb_fail(L, "validation", "url", "shared key: %s", why);
  qlen = strlen(query);
  dec = scratch + 4 * (ulen + 2);
  /* decode "a=1&b=2" into pairs; names lower-cased; '+' is a space */
  for (size_t i = 0; i < qlen;) {
    size_t j = i, eq;
    while (j < qlen && query[j] != '&')
      j++;
    if (j > i) {
      qpair *pr = &pairs[np++];
      for (eq = i; eq < j && query[eq] != '='; eq++)
        ;
      pr->name = dec;
      pr->nlen = azb_url_decode(query + i, eq - i, dec, 1);
      for (size_t k = 0; k < pr->nlen; k++)
        dec[k] = (char)lowerc((unsigned char)dec[k]);
      dec += pr->nlen;
      pr->value = dec;
      pr->vlen = eq < j ? azb_url_decode(query + eq + 1, j - eq - 1, dec, 1) : 0;
      dec += pr->vlen;
    }
    i = j + 1;
  }
  qsort(pairs, np, sizeof *pairs, qpair_cmp);
  /* headers: the standard ones and the ocp-* ones */
  nh = azb_headers_collect(L, ihdr, &hs);
  if (nh < 0)
    return azb_fail(L, "validation", "headers", "shared key: %s",
                    lua_tostring(L, -1));
  ocp = (const azb_header **)lua_newuserdatauv(L, sizeof(*ocp) * (size_t)nh, 0);
  memset(found, 0, sizeof found);
  for (int i = 0; i < nh; i++) {
    const azb_header *h = &hs[i];
    if (h->nlen > 4 && azb_strnieq(h->name, "ocp-", 4)) {
      ocp[nocp++] = h;
      continue;
    }
    for (size_t k = 0; k < NSTD; k++)
      if (hname_is(h, std_headers[k])) {
        if (found[k] != NULL)
          return azb_fail(L, "validation", "headers",
                          "shared key: header '%s' given twice", std_headers[k]);
        found[k] = h;
      }
  }
  qsort(ocp, nocp, sizeof *ocp, hptr_cmp);
  for (size_t i = 1; i < nocp; i++)
    if (hname_cmp(ocp[i - 1], ocp[i]) == 0)
      return azb_fail(L, "validation", "headers",
                      "shared key: header '%s' given twice",
                      lua_pushlstring(L, ocp[i]->name, ocp[i]->nlen));
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < mlen; i++)
    luaL_addchar(&b, (char)(method[i] >= 'a' ? method[i] - 'a' + 'A' : method[i]));
  luaL_addchar(&b, '\n');
  for (size_t k = 0; k < NSTD; k++) {
    if (found[k] != NULL)
      luaL_addlstring(&b, found[k]->value, found[k]->vlen);
    luaL_addchar(&b, '\n');
  }
  for (size_t i = 0; i < nocp; i++) {
    for (size_t k = 0; k < ocp[i]->nlen; k++)
      luaL_addchar(&b, (char)lowerc((unsigned char)ocp[i]->name[k]));
    luaL_addchar(&b, ':');
    luaL_addlstring(&b, ocp[i]->value, ocp[i]->vlen);
    luaL_addchar(&b, '\n');
  }
  luaL_addchar(&b, '/');
  luaL_addlstring(&b, account, alen);
  luaL_addstring(&b, path[0] ? path : "/");
  for (size_t i = 0; i < np; i++) {
    if (i > 0 && spancmp(pairs[i].name, pairs[i].nlen, pairs[i - 1].name,
                         pairs[i - 1].nlen) == 0)
      luaL_addchar(&b, ',');   /* repeated name: sorted values, joined */
    else {
      luaL_addchar(&b, '\n');
      luaL_addlstring(&b, pairs[i].name, pairs[i].nlen);
      luaL_addchar(&b, ':');
    }
    luaL_addlstring(&b, pairs[i].value, pairs[i].vlen);
  }
  luaL_pushresult(&b);
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** SharedKey class
** =======================================================
*/

static SharedKey *check_open_key(lua_State *L) {
  SharedKey *k = (SharedKey *)luaL_checkudata(L, 1, AZB_SHAREDKEY);
  if (k->closed)
    luaL_error(L, "attempt to use a closed " AZB_SHAREDKEY);
  return k;
}

static void key_release(SharedKey *k) {
  if (k->key != NULL) {
    OPENSSL_cleanse(k->key, k->keylen);
    free(k->key);
  }
  k->key = NULL;
  k->keylen = 0;
  k->closed = 1;
}

/* core.shared_key(account, key_base64) -> SharedKey, or fail (kind "auth") */
static int auth_shared_key(lua_State *L) {
  size_t alen, klen, outn;
  luaL_checklstring(L, 1, &alen);
  const char *b64 = luaL_checklstring(L, 2, &klen);
  unsigned char *raw;
  SharedKey *k;
  luaL_argcheck(L, alen > 0, 1, "account name is empty");
  k = (SharedKey *)lua_newuserdatauv(L, sizeof *k, 1);
  memset(k, 0, sizeof *k);
  k->closed = 1;          /* until the key is in place */
  luaL_setmetatable(L, AZB_SHAREDKEY);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_ACCOUNT);
  raw = (unsigned char *)malloc(klen / 4 * 3 + 1);
  if (raw == NULL)
    return luaL_error(L, "not enough memory");
  if (azb_b64_decode(b64, klen, raw, &outn) != 0 || outn == 0) {
    OPENSSL_cleanse(raw, klen / 4 * 3 + 1);
    free(raw);
    return azb_fail(L, "auth", NULL,
                    "shared key: account key is not valid base64");
  }
  k->key = raw;
  k->keylen = outn;
  k->closed = 0;
  return 1;
}

/* sk:account() -> account name */
static int key_account(lua_State *L) {
  check_open_key(L);
  lua_getiuservalue(L, 1, UV_ACCOUNT);
  return 1;
}

/* sk:string_to_sign(method, url [, headers]) -> string, or fail */
static int key_string_to_sign(lua_State *L) {
  check_open_key(L);
  lua_settop(L, 4);
  lua_getiuservalue(L, 1, UV_ACCOUNT);
  return push_sts(L, 5, 2, 3, 4);
}

/* sk:sign(method, url [, headers]) -> "SharedKey acct:sig", or fail */
static int key_sign(lua_State *L) {
  SharedKey *k = check_open_key(L);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char sig[AZB_B64LEN(EVP_MAX_MD_SIZE) + 1];
  size_t slen;
  const char *sts;
  int r;
  lua_settop(L, 4);
  lua_getiuservalue(L, 1, UV_ACCOUNT);
  r = push_sts(L, 5, 2, 3, 4);
  if (r != 1)
    return r;
  sts = lua_tolstring(L, -1, &slen);
  if (HMAC(EVP_sha256(), k->key, (int)k->keylen, (const unsigned char *)sts,
           slen, md, &mdlen) == NULL)
    return luaL_error(L, "shared key: HMAC-SHA256 failed");
  azb_b64_encode(md, mdlen, sig);
  OPENSSL_cleanse(md, sizeof md);
  lua_pushfstring(L, "SharedKey %s:%s", lua_tostring(L, 5), sig);
  return 1;
}

/* sk:close() -> true; also __gc and __close; wipes the key */
static int key_close(lua_State *L) {
  key_release((SharedKey *)luaL_checkudata(L, 1, AZB_SHAREDKEY));
  lua_pushboolean(L, 1);
  return 1;
}

/* tostring(sk) -> "azbatch.SharedKey(<account>)"; never the key */
static int key_tostring(lua_State *L) {
  SharedKey *k = (SharedKey *)luaL_checkudata(L, 1, AZB_SHAREDKEY);
  if (k->closed)
    lua_pushliteral(L, AZB_SHAREDKEY " (closed)");
  else {
    lua_getiuservalue(L, 1, UV_ACCOUNT);
    lua_pushfstring(L, AZB_SHAREDKEY "(%s)", lua_tostring(L, -1));
  }
  return 1;
}

/* core._hmac_sha256(key, data) -> raw 32-byte digest (test-only helper) */
static int auth_hmac_sha256(lua_State *L) {
  size_t kl, dl;
  const char *key = luaL_checklstring(L, 1, &kl);
  const char *data = luaL_checklstring(L, 2, &dl);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (HMAC(EVP_sha256(), key, (int)kl, (const unsigned char *)data, dl, md,
           &mdlen) == NULL)
    return luaL_error(L, "HMAC-SHA256 failed");
  lua_pushlstring(L, (const char *)md, mdlen);
  return 1;
}

static const luaL_Reg key_methods[] = {
  { "account", key_account },
  { "string_to_sign", key_string_to_sign },
  { "sign", key_sign },
  { "close", key_close },
  { NULL, NULL }
};

static const luaL_Reg key_meta[] = {
  { "__gc", key_close },
  { "__close", key_close },
  { "__tostring", key_tostring },
  { NULL, NULL }
};

static const luaL_Reg auth_funcs[] = {
  { "shared_key", auth_shared_key },
  { "_hmac_sha256", auth_hmac_sha256 },
  { NULL, NULL }
};

void azb_auth_open(lua_State *L) {
  azb_newclass(L, AZB_SHAREDKEY, key_meta, key_methods);
  lua_pop(L, 1);
  luaL_setfuncs(L, auth_funcs, 0);
}

/* }====================================================== */
