/*
** azb_auth.c: Shared Key signing for the Batch data plane (the
** string-to-sign of design.md "On the wire", HMAC-SHA256 via OpenSSL).
*/
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "azb.h"

typedef struct SharedKey {
  unsigned char *key;      /* decoded key bytes; NULL once released */
  size_t keylen;
  EVP_MAC_CTX *mac;        /* HMAC-SHA256 keyed once: each signature reuses it */
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
** String to sign (pure C: runs inside the transport's request build)
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

static int hptr_cmp(const void *x, const void *y) {
  return azb_header_cmp(*(const azb_header *const *)x,
                        *(const azb_header *const *)y);
}

/*
** The string to sign into b, from the method, the header list exactly as
** it will be sent (checked, no repeated names), the path as libcurl sends
** it and the raw query (NULL for none). Returns NULL or why.
*/
static const char *build_sts(azb_buf *b, const char *account, size_t alen,
                             const char *method, const azb_header *hs,
                             int nh, const char *path, const char *query) {
  const azb_header *found[NSTD];
  const azb_header **ocp = NULL;
  size_t nocp = 0, np = 0, qlen = query ? strlen(query) : 0;
  qpair *pairs = NULL;
  char *dec = NULL, *d;
  const char *why = NULL;
  for (const char *m = method; *m; m++)
    if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z')))
      return "the method must be letters only";
  pairs = (qpair *)malloc(sizeof *pairs * (qlen / 2 + 2));
  dec = (char *)malloc(qlen + 1);
  ocp = (const azb_header **)malloc(sizeof *ocp * (size_t)(nh + 1));
  if (pairs == NULL || dec == NULL || ocp == NULL) {
    why = "out of memory";
    goto done;
  }
  /* decode "a=1&b=2" into pairs; names lower-cased; '+' is a space */
  d = dec;
  for (size_t i = 0; i < qlen;) {
    size_t j = i, eq;
    while (j < qlen && query[j] != '&')
      j++;
    if (j > i) {
      qpair *pr = &pairs[np++];
      for (eq = i; eq < j && query[eq] != '='; eq++)
        ;
      pr->name = d;
      pr->nlen = azb_url_decode(query + i, eq - i, d, 1);
      for (size_t k = 0; k < pr->nlen; k++)
        d[k] = (char)lowerc((unsigned char)d[k]);
      d += pr->nlen;
      pr->value = d;
      pr->vlen = eq < j ? azb_url_decode(query + eq + 1, j - eq - 1, d, 1) : 0;
      d += pr->vlen;
    }
    i = j + 1;
  }
  qsort(pairs, np, sizeof *pairs, qpair_cmp);
  /* headers: the standard ones and the ocp-* ones */
  memset(found, 0, sizeof found);
  for (int i = 0; i < nh; i++) {
    const azb_header *h = &hs[i];
    if (h->nlen > 4 && azb_strnieq(h->name, "ocp-", 4)) {
      ocp[nocp++] = h;
      continue;
    }
    for (size_t k = 0; k < NSTD; k++)
      if (azb_header_is(h, std_headers[k])) {
        if (found[k] != NULL)
          why = "a header is given twice";
        found[k] = h;
      }
  }
  qsort(ocp, nocp, sizeof *ocp, hptr_cmp);
  for (size_t i = 1; i < nocp; i++)
    if (azb_header_cmp(ocp[i - 1], ocp[i]) == 0)
      why = "a header is given twice";
  if (why != NULL)
    goto done;
  for (const char *m = method; *m; m++)
    azb_buf_addc(b, *m >= 'a' ? *m - 'a' + 'A' : *m);
  azb_buf_addc(b, '\n');
  for (size_t k = 0; k < NSTD; k++) {
    if (found[k] != NULL)
      azb_buf_add(b, found[k]->value, found[k]->vlen);
    azb_buf_addc(b, '\n');
  }
  for (size_t i = 0; i < nocp; i++) {
    for (size_t k = 0; k < ocp[i]->nlen; k++)
      azb_buf_addc(b, lowerc((unsigned char)ocp[i]->name[k]));
    azb_buf_addc(b, ':');
    azb_buf_add(b, ocp[i]->value, ocp[i]->vlen);
    azb_buf_addc(b, '\n');
  }
  azb_buf_addc(b, '/');
  azb_buf_add(b, account, alen);
  azb_buf_adds(b, path != NULL && path[0] ? path : "/");
  for (size_t i = 0; i < np; i++) {
    if (i > 0 && spancmp(pairs[i].name, pairs[i].nlen, pairs[i - 1].name,
                         pairs[i - 1].nlen) == 0)
      azb_buf_addc(b, ',');   /* repeated name: sorted values, joined */
    else {
      azb_buf_addc(b, '\n');
      azb_buf_add(b, pairs[i].name, pairs[i].nlen);
      azb_buf_addc(b, ':');
    }
    azb_buf_add(b, pairs[i].value, pairs[i].vlen);
  }
  if (b->oom)
    why = "out of memory";
done:
  free(pairs);
  free(dec);
  free(ocp);
  return why;
}

/* "SharedKey account:base64(HMAC-SHA256(key, sts))" into out. */
static const char *sign_sts(const SharedKey *k, const char *account,
                            const azb_buf *sts, azb_buf *out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t mdlen = 0;
  char sig[AZB_B64LEN(EVP_MAX_MD_SIZE) + 1];
  /* a NULL key re-initialises with the key given at creation */
  if (!EVP_MAC_init(k->mac, NULL, 0, NULL) ||
      !EVP_MAC_update(k->mac, (const unsigned char *)(sts->p ? sts->p : ""),
                      sts->n) ||
      !EVP_MAC_final(k->mac, md, &mdlen, sizeof md))
    return "HMAC-SHA256 failed";
  azb_b64_encode(md, mdlen, sig);
  OPENSSL_cleanse(md, sizeof md);
  azb_buf_adds(out, "SharedKey ");
  azb_buf_adds(out, account);
  azb_buf_addc(out, ':');
  azb_buf_adds(out, sig);
  return out->oom ? "out of memory" : NULL;
}

const char *azb_sharedkey_authorize(lua_State *L, int kidx,
                                    const char *method,
                                    const azb_header *hs, int nh,
                                    const char *path, const char *query,
                                    azb_buf *out) {
  SharedKey *k = (SharedKey *)luaL_checkudata(L, kidx, AZB_SHAREDKEY);
  const char *account, *why;
  size_t alen;
  azb_buf sts;
  if (k->closed)
    return "the " AZB_SHAREDKEY " is closed";
  lua_getiuservalue(L, kidx, UV_ACCOUNT);   /* anchored by the key */
  account = lua_tolstring(L, -1, &alen);
  lua_pop(L, 1);
  azb_buf_init(&sts);
  why = build_sts(&sts, account, alen, method, hs, nh, path, query);
  if (why == NULL)
    why = sign_sts(k, account, &sts, out);
  azb_buf_wipe(&sts);
  return why;
}

/*
** The string to sign (and, when k is given, the signature) for a URL and
** a header table, as the transport would build them: pushes the result or
** a fail. For tests and for callers with their own transport.
*/
static int push_signed(lua_State *L, SharedKey *k) {
  const char *method = luaL_checkstring(L, 2), *url = luaL_checkstring(L, 3);
  const char *account, *why;
  char errs[320];
  azb_header *hs;
  azb_url u;
  azb_buf sts, out;
  int nh;
  size_t alen;
  lua_settop(L, 4);
  lua_getiuservalue(L, 1, UV_ACCOUNT);                  /* 5 */
  account = lua_tolstring(L, 5, &alen);
  nh = azb_headers_collect(L, 4, 0, &hs);              /* 6 (may raise) */
  if (nh < 0)
    return azb_fail(L, "validation", "headers", "shared key: %s",
                    lua_tostring(L, -1));
  if (azb_url_parse(url, 0, &u, errs, sizeof errs) != NULL)
    return azb_fail(L, "validation", "url", "shared key: url: %s", errs);
  azb_buf_init(&sts);
  azb_buf_init(&out);
  why = build_sts(&sts, account, alen, method, hs, nh, u.path, u.query);
  azb_url_free(&u);
  if (why == NULL && k != NULL)
    why = sign_sts(k, account, &sts, &out);
  if (why != NULL) {
    azb_buf_wipe(&sts);
    azb_buf_wipe(&out);
    return azb_fail(L, "validation", strncmp(why, "the method", 10) == 0
                    ? "method" : "headers", "shared key: %s", why);
  }
  if (k != NULL)
    lua_pushlstring(L, out.p, out.n);
  else
    lua_pushlstring(L, sts.p ? sts.p : "", sts.n);
  azb_buf_wipe(&sts);
  azb_buf_wipe(&out);
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
  EVP_MAC_CTX_free(k->mac);   /* it clears its copy of the key */
  k->mac = NULL;
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
  {
    EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    k->mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    EVP_MAC_free(hmac);   /* the context keeps its own reference */
    if (k->mac == NULL || !EVP_MAC_init(k->mac, k->key, k->keylen, params)) {
      key_release(k);
      return luaL_error(L, "shared key: HMAC-SHA256 is not available");
    }
  }
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
  return push_signed(L, NULL);
}

/* sk:sign(method, url [, headers]) -> "SharedKey acct:sig", or fail */
static int key_sign(lua_State *L) {
  return push_signed(L, check_open_key(L));
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
