/*
** azb_tokenans.c: reading token answers. An OAuth or IMDS answer, or
** the Azure CLI's output, becomes a cached token (its expiry clamped) or
** the fields of a fail triple: the service's error and description,
** cleaned to one line, with whatever was sent redacted, and the request
** id. Also cred:finish, which reads the answer of cred:start's request.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "azb_token.h"

/* a token is trusted to live between a minute and a day, whatever it says */
#define LIFETIME_MIN      60.0
#define LIFETIME_MAX      86400.0


/*
** {======================================================
** Reading an answer (pure C)
** =======================================================
*/

/* One line of text from the network, cleaned for a message. */
static void copy_text(char *dst, size_t dsz, const char *s, size_t n) {
  size_t i = 0, k;
  /* the first line only: Entra appends "\r\nTrace ID: ..." */
  while (i < n && s[i] != '\r' && s[i] != '\n')
    i++;
  k = azb_text_clean(s, i, dst, dsz - 1);
  while (k > 0 && (dst[k - 1] == ' ' || dst[k - 1] == '.'))
    k--;
  dst[k] = '\0';
}

#define REDACTED "<redacted>"

/*
** Rewrite text (NUL-terminated, 'cap' bytes of room) with every copy of
** s[0..n) replaced by REDACTED; with n == 0, the value after each 'key'
** up to '&', a blank or a quote.
*/
static void redact(char *text, size_t cap, const char *key, const char *s,
                   size_t n) {
  char out[3 * TEXT_MAX];
  size_t len = strlen(text), o = 0, kl = key ? strlen(key) : 0;
  size_t i = 0;
  if (key == NULL && n < 4)   /* a short secret would redact ordinary words */
    return;
  while (i < len && o + 32 + sizeof REDACTED < sizeof out) {
    if (key == NULL && i + n <= len && memcmp(text + i, s, n) == 0) {
      memcpy(out + o, REDACTED, sizeof REDACTED - 1);
      o += sizeof REDACTED - 1;
      i += n;
    }
    else if (key != NULL && i + kl <= len && memcmp(text + i, key, kl) == 0) {
      size_t v = strcspn(text + i + kl, "& \t\"'");
      memcpy(out + o, key, kl);
      o += kl;
      i += kl;
      if (v > 0) {
        memcpy(out + o, REDACTED, sizeof REDACTED - 1);
        o += sizeof REDACTED - 1;
        i += v;
      }
    }
    else
      out[o++] = text[i++];
  }
  if (o >= cap)
    o = cap - 1;
  memcpy(text, out, o);
  text[o] = '\0';
}

/*
** An endpoint that echoes the request must not put what was sent into
** our messages: the secret or assertion, raw or URL-encoded, and
** anything after a "client_secret=" or "client_assertion=".
*/
static void redact_sent(const TokenCred *c, char *text, size_t cap) {
  const char *val[2] = { c->secret, c->sent.p };
  size_t len[2] = { c->secretlen, c->sent.n };
  for (int i = 0; i < 2; i++) {
    azb_buf enc;
    if (val[i] == NULL || len[i] == 0)
      continue;
    azb_buf_init(&enc);
    redact(text, cap, NULL, val[i], len[i]);
    if (azb_url_encode(&enc, val[i], len[i]) == 0)
      redact(text, cap, NULL, enc.p, enc.n);
    azb_buf_wipe(&enc);
  }
  redact(text, cap, "client_secret=", NULL, 0);
  redact(text, cap, "client_assertion=", NULL, 0);
}

static double num_field(const azb_jfield *f) {
  if (f->type == AZB_JNUMBER)
    return f->num;
  if (f->type == AZB_JSTRING && f->str.p != NULL && f->str.n > 0 &&
      f->str.n < 32 && strspn(f->str.p, "0123456789.") == f->str.n)
    return strtod(f->str.p, NULL);   /* IMDS sends numbers as strings */
  return -1;
}

/* "2024-01-01 12:00:00.000000" in local time (old az CLI's expiresOn). */
static double local_time(const char *s) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  return (double)mktime(&tm);
}

/*
** Read a token answer: cache the token, or fill the error fields.
** Field names: OAuth's, then the Azure CLI's. The expiry is clamped to
** [now + LIFETIME_MIN, now + LIFETIME_MAX]: a bad clock or a hostile
** answer can neither pin a token for years nor force a fetch per call.
*/
void azb_token_take_response(TokenCred *c, const char *scope, size_t sn,
                          const azb_buf *resp, outcome *o) {
  enum { F_TOK, F_IN, F_ON, F_ERR, F_DESC, F_TRACE, F_CTOK, F_CON, F_NF };
  azb_jfield f[F_NF] = {
    { "access_token", 0, { 0 }, 0 }, { "expires_in", 0, { 0 }, 0 },
    { "expires_on", 0, { 0 }, 0 }, { "error", 0, { 0 }, 0 },
    { "error_description", 0, { 0 }, 0 }, { "trace_id", 0, { 0 }, 0 },
    { "accessToken", 0, { 0 }, 0 }, { "expiresOn", 0, { 0 }, 0 }
  };
  double now = (double)time(NULL), exp = -1;
  const azb_jfield *tok;
  if (azb_json_fields(resp->p ? resp->p : "", resp->n, f, F_NF) != 0) {
    if (o->status != 0 && (o->status < 200 || o->status > 299))
      snprintf(o->problem, sizeof o->problem, "HTTP %ld from the token "
               "endpoint", o->status);
    else
      snprintf(o->problem, sizeof o->problem, "malformed token response");
    goto done;
  }
  if (f[F_ERR].type == AZB_JSTRING)
    copy_text(o->error, sizeof o->error, f[F_ERR].str.p, f[F_ERR].str.n);
  if (f[F_DESC].type == AZB_JSTRING)
    copy_text(o->desc, sizeof o->desc, f[F_DESC].str.p, f[F_DESC].str.n);
  if (o->request_id[0] == '\0' && f[F_TRACE].type == AZB_JSTRING)
    copy_text(o->request_id, sizeof o->request_id, f[F_TRACE].str.p,
              f[F_TRACE].str.n);
  redact_sent(c, o->error, sizeof o->error);
  redact_sent(c, o->desc, sizeof o->desc);
  if (o->error[0] != '\0' || (o->status != 0 && (o->status < 200 || o->status > 299)))
    goto done;
  tok = f[F_TOK].type == AZB_JSTRING ? &f[F_TOK] : &f[F_CTOK];
  if (tok->type != AZB_JSTRING || tok->str.n == 0) {
    snprintf(o->problem, sizeof o->problem, "token response has no access token");
    goto done;
  }
  for (size_t i = 0; i < tok->str.n; i++)
    if ((unsigned char)tok->str.p[i] <= ' ' || tok->str.p[i] == 0x7F) {
      /* it goes into a header line */
      snprintf(o->problem, sizeof o->problem, "the access token holds "
               "control characters or spaces");
      goto done;
    }
  if (num_field(&f[F_ON]) > 0)
    exp = num_field(&f[F_ON]);
  else if (num_field(&f[F_IN]) >= 0)
    exp = now + num_field(&f[F_IN]);
  else if (f[F_CON].type == AZB_JSTRING)
    exp = local_time(f[F_CON].str.p);
  if (exp < 0)
    exp = now + 600;   /* no usable expiry: keep it briefly */
  if (!(exp >= now + LIFETIME_MIN))
    exp = now + LIFETIME_MIN;
  else if (exp > now + LIFETIME_MAX)
    exp = now + LIFETIME_MAX;
  if (azb_token_cache_put(c, scope, sn, tok->str.p, tok->str.n, now,
                          exp) == NULL)
    snprintf(o->problem, sizeof o->problem, "out of memory");
  else {
    o->ok = 1;
    o->expires_on = exp;
  }
done:
  for (int i = 0; i < F_NF; i++)
    azb_buf_wipe(&f[i].str);
}

/* Find "x-ms-request-id" among raw response header lines. */
static void take_request_id(const azb_buf *h, outcome *o) {
  static const char name[] = "x-ms-request-id:";
  const char *p = h->p, *e = h->p + h->n;
  while (p != NULL && p < e) {
    const char *eol = memchr(p, '\n', (size_t)(e - p));
    size_t len = (size_t)((eol ? eol : e) - p);
    if (len > sizeof name - 1 && azb_strnieq(p, name, sizeof name - 1)) {
      const char *v = p + sizeof name - 1;
      while (*v == ' ' || *v == '\t')
        v++;
      copy_text(o->request_id, sizeof o->request_id, v, len - (size_t)(v - p));
    }
    p = eol ? eol + 1 : NULL;
  }
}

/* }====================================================== */


/*
** {======================================================
** Failures, and cred:finish
** =======================================================
*/

void azb_token_push_failure(lua_State *L, TokenCred *c, const outcome *o) {
  const char *aad;
  luaL_pushfail(L);
  if (o->error[0] != '\0')
    lua_pushfstring(L, "auth: %s credential: %s%s%s", azb_token_kinds[c->kind],
                    o->error, o->desc[0] ? ": " : "", o->desc);
  else
    lua_pushfstring(L, "auth: %s credential: %s", azb_token_kinds[c->kind],
                    o->problem);
  lua_createtable(L, 0, 6);
  lua_pushliteral(L, "auth");
  lua_setfield(L, -2, "kind");
  if (o->status > 0) {
    lua_pushinteger(L, o->status);
    lua_setfield(L, -2, "status");
    /* an endpoint that is busy or broken may answer the next time */
    if (o->status == 429 || o->status >= 500) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "retryable");
    }
  }
  if (o->error[0] != '\0') {
    lua_pushstring(L, o->error);
    lua_setfield(L, -2, "code");
  }
  if (o->request_id[0] != '\0') {
    lua_pushstring(L, o->request_id);
    lua_setfield(L, -2, "request_id");
  }
  if ((aad = strstr(o->desc, "AADSTS")) != NULL) {
    size_t n = 6 + strspn(aad + 6, "0123456789");
    lua_pushlstring(L, aad, n);
    lua_setfield(L, -2, "aadsts");
  }
  if (c->kind == K_CLI && o->exit_code != 0) {
    lua_pushinteger(L, o->exit_code);
    lua_setfield(L, -2, "exit_code");
  }
}

/* The fail triple on top, its message said as the credential's. */
int azb_token_fail(lua_State *L, TokenCred *c) {
  const char *m = lua_tostring(L, -2);
  if (m != NULL && strncmp(m, "transport: ", 11) == 0)
    m += 11;
  lua_pushfstring(L, "auth: %s credential: %s", azb_token_kinds[c->kind],
                  m ? m : "?");
  lua_replace(L, -3);
  return 3;
}

/*
** cred:finish(scope, req) -> expires_on, or fail: reads the answer of a
** request from cred:start, caches the token and wipes the answer.
*/
int azb_token_finish(lua_State *L) {
  TokenCred *c = azb_token_check_open(L);
  size_t sn;
  const char *scope = azb_token_check_scope(L, 2, &sn);
  azb_response resp;
  outcome o;
  lua_settop(L, 3);
  memset(&o, 0, sizeof o);
  if (!azb_http_response(L, 3, &resp)) {
    /* the transport's fail, said as the credential's */
    lua_getfield(L, 3, "result");
    lua_pushvalue(L, 3);
    lua_call(L, 1, 3);
    azb_http_wipe(L, 3);
    azb_buf_wipe(&c->sent);
    if (!lua_isnil(L, -3)) {   /* an answer after all: cannot happen */
      lua_settop(L, 3);
      luaL_pushfail(L);
      lua_pushfstring(L, "auth: %s credential: no answer",
                      azb_token_kinds[c->kind]);
      lua_createtable(L, 0, 1);
      lua_pushliteral(L, "auth");
      lua_setfield(L, -2, "kind");
      return 3;
    }
    return azb_token_fail(L, c);
  }
  o.status = resp.status;
  take_request_id(resp.hdrs, &o);
  azb_token_take_response(c, scope, sn, resp.body, &o);
  if (!o.ok && o.problem[0] == '\0' && o.error[0] == '\0')
    snprintf(o.problem, sizeof o.problem, "HTTP %ld from the token endpoint",
             o.status);
  azb_http_wipe(L, 3);
  azb_buf_wipe(&c->sent);
  if (!o.ok) {
    azb_token_push_failure(L, c, &o);
    return 3;
  }
  lua_pushinteger(L, (lua_Integer)o.expires_on);
  return 1;
}

/* A message from az's stderr: its "ERROR:" line, else the first line. */
void azb_token_cli_problem(const azb_buf *err, const char *prog, outcome *o) {
  const char *p = err->p, *e = err->p + err->n, *pick = NULL;
  while (p != NULL && p < e) {
    const char *eol = memchr(p, '\n', (size_t)(e - p));
    size_t n = (size_t)((eol ? eol : e) - p);
    if (n > 0 && pick == NULL)
      pick = p;
    if (n >= 6 && memcmp(p, "ERROR:", 6) == 0) {
      pick = p;
      break;
    }
    p = eol ? eol + 1 : NULL;
  }
  if (pick != NULL)
    copy_text(o->problem, sizeof o->problem, pick, (size_t)(e - pick));
  if (o->problem[0] == '\0' && o->exit_code == 127)   /* exec failed late */
    snprintf(o->problem, sizeof o->problem, "cannot run '%s' (exit status 127)",
             prog);
  else if (o->problem[0] == '\0')
    snprintf(o->problem, sizeof o->problem, "az exited with status %d",
             o->exit_code);
}

/* }====================================================== */
