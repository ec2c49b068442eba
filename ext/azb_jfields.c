/*
** azb_jfields.c: strict extraction of top-level members of one JSON
** object into C buffers. Pure C (no Lua, never raises), fuzzed.
*/
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "azb.h"


/*
** {======================================================
** JSON members
** =======================================================
** Token endpoints answer with a flat JSON object and C needs four of its
** members while the secret is still in C memory; lua-cjson cannot be
** called from here without a Lua round trip that would copy the token
** into an interned string. So this is a small, strict RFC 8259 reader:
** it validates the whole text, skips nested values (depth-limited),
** and decodes only the top-level members asked for.
*/

#define JSON_DEPTH 64

typedef struct jrd {
  const char *p, *e;
} jrd;

static void jws(jrd *r) {
  while (r->p < r->e && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' ||
                         *r->p == '\r'))
    r->p++;
}

static void utf8(azb_buf *b, unsigned long c) {
  char s[4];
  size_t n;
  if (c < 0x80) { s[0] = (char)c; n = 1; }
  else if (c < 0x800) {
    s[0] = (char)(0xC0 | (c >> 6)); s[1] = (char)(0x80 | (c & 0x3F)); n = 2;
  }
  else if (c < 0x10000) {
    s[0] = (char)(0xE0 | (c >> 12)); s[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    s[2] = (char)(0x80 | (c & 0x3F)); n = 3;
  }
  else {
    s[0] = (char)(0xF0 | (c >> 18)); s[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    s[2] = (char)(0x80 | ((c >> 6) & 0x3F)); s[3] = (char)(0x80 | (c & 0x3F));
    n = 4;
  }
  azb_buf_add(b, s, n);
}

static int hex4(const char *p, unsigned long *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    int h = azb_hexval((unsigned char)p[i]);
    if (h < 0)
      return -1;
    *v = *v * 16 + (unsigned long)h;
  }
  return 0;
}

/* At '"': read a string, decoding into 'out' when not NULL. */
static int jstring(jrd *r, azb_buf *out) {
  r->p++;
  while (r->p < r->e) {
    unsigned char c = (unsigned char)*r->p++;
    if (c == '"')
      return 0;
    if (c < 0x20)
      return -1;
    if (c != '\\') {
      if (out) azb_buf_addc(out, c);
      continue;
    }
    if (r->p >= r->e)
      return -1;
    c = (unsigned char)*r->p++;
    switch (c) {
      case '"': case '\\': case '/': if (out) azb_buf_addc(out, c); break;
      case 'b': if (out) azb_buf_addc(out, '\b'); break;
      case 'f': if (out) azb_buf_addc(out, '\f'); break;
      case 'n': if (out) azb_buf_addc(out, '\n'); break;
      case 'r': if (out) azb_buf_addc(out, '\r'); break;
      case 't': if (out) azb_buf_addc(out, '\t'); break;
      case 'u': {
        unsigned long cp, lo;
        if (r->e - r->p < 4 || hex4(r->p, &cp) != 0)
          return -1;
        r->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && r->e - r->p >= 6 &&
            r->p[0] == '\\' && r->p[1] == 'u' && hex4(r->p + 2, &lo) == 0 &&
            lo >= 0xDC00 && lo < 0xE000) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          r->p += 6;
        }
        else if (cp >= 0xD800 && cp < 0xE000)
          cp = 0xFFFD;   /* lone surrogate */
        if (out) utf8(out, cp);
        break;
      }
      default:
        return -1;
    }
  }
  return -1;
}

static int digits(jrd *r) {
  const char *s = r->p;
  while (r->p < r->e && *r->p >= '0' && *r->p <= '9')
    r->p++;
  return r->p > s ? 0 : -1;
}

static int jnumber(jrd *r, double *v) {
  const char *s = r->p;
  char tmp[64];
  if (r->p < r->e && *r->p == '-')
    r->p++;
  if (r->p < r->e && *r->p == '0')
    r->p++;
  else if (digits(r) != 0)
    return -1;
  if (r->p < r->e && *r->p == '.') {
    r->p++;
    if (digits(r) != 0)
      return -1;
  }
  if (r->p < r->e && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->e && (*r->p == '+' || *r->p == '-'))
      r->p++;
    if (digits(r) != 0)
      return -1;
  }
  {
    /* a long one (a hundred digits is valid JSON) on the heap, never NaN */
    size_t n = (size_t)(r->p - s);
    char *text = n < sizeof tmp ? tmp : malloc(n + 1);
    if (text == NULL)
      return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    *v = strtod(text, NULL);
    if (text != tmp)
      free(text);
  }
  if (!isfinite(*v))
    *v = *v < 0 ? -DBL_MAX : DBL_MAX;   /* 1e999: as far as a double goes */
  return 0;
}

static int jlit(jrd *r, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(r->e - r->p) < n || memcmp(r->p, lit, n) != 0)
    return -1;
  r->p += n;
  return 0;
}

static int jvalue(jrd *r, int depth);

static int jcontainer(jrd *r, int depth) {
  char close = *r->p == '{' ? '}' : ']';
  int obj = close == '}';
  if (depth >= JSON_DEPTH)
    return -1;
  r->p++;
  jws(r);
  if (r->p < r->e && *r->p == close) {
    r->p++;
    return 0;
  }
  for (;;) {
    if (obj) {
      if (r->p >= r->e || *r->p != '"' || jstring(r, NULL) != 0)
        return -1;
      jws(r);
      if (r->p >= r->e || *r->p++ != ':')
        return -1;
      jws(r);
    }
    if (jvalue(r, depth + 1) != 0)
      return -1;
    jws(r);
    if (r->p >= r->e)
      return -1;
    if (*r->p == close) {
      r->p++;
      return 0;
    }
    if (*r->p++ != ',')
      return -1;
    jws(r);
  }
}

static int jvalue(jrd *r, int depth) {
  double d;
  if (r->p >= r->e)
    return -1;
  switch (*r->p) {
    case '{': case '[': return jcontainer(r, depth);
    case '"': return jstring(r, NULL);
    case 't': return jlit(r, "true");
    case 'f': return jlit(r, "false");
    case 'n': return jlit(r, "null");
    default: return jnumber(r, &d);
  }
}

int azb_json_fields(const char *s, size_t n, azb_jfield *f, int nf) {
  jrd r;
  azb_buf key;
  int rc = -1;
  r.p = s;
  r.e = s + n;
  azb_buf_init(&key);
  for (int i = 0; i < nf; i++) {
    f[i].type = AZB_JNONE;
    azb_buf_init(&f[i].str);
    f[i].num = 0;
  }
  jws(&r);
  if (r.p >= r.e || *r.p != '{')
    goto done;
  r.p++;
  jws(&r);
  if (r.p < r.e && *r.p == '}') {
    r.p++;
    goto tail;
  }
  for (;;) {
    azb_jfield *hit = NULL;
    azb_buf_reset(&key);
    if (r.p >= r.e || *r.p != '"' || jstring(&r, &key) != 0 || key.oom)
      goto done;
    for (int i = 0; i < nf; i++)
      if (key.p != NULL && strlen(f[i].key) == key.n &&
          memcmp(f[i].key, key.p, key.n) == 0)
        hit = &f[i];
    jws(&r);
    if (r.p >= r.e || *r.p++ != ':')
      goto done;
    jws(&r);
    if (r.p >= r.e)
      goto done;
    if (hit != NULL && *r.p == '"') {      /* last duplicate wins */
      azb_buf_wipe(&hit->str);
      hit->type = AZB_JSTRING;
      if (jstring(&r, &hit->str) != 0 || hit->str.oom)
        goto done;
      azb_buf_add(&hit->str, "", 0);        /* NUL-terminate "" too */
    }
    else if (hit != NULL && (*r.p == '-' || (*r.p >= '0' && *r.p <= '9'))) {
      hit->type = AZB_JNUMBER;
      if (jnumber(&r, &hit->num) != 0)
        goto done;
    }
    else {
      if (hit != NULL)
        hit->type = AZB_JOTHER;
      if (jvalue(&r, 1) != 0)
        goto done;
    }
    jws(&r);
    if (r.p >= r.e)
      goto done;
    if (*r.p == '}') {
      r.p++;
      break;
    }
    if (*r.p++ != ',')
      goto done;
    jws(&r);
  }
tail:
  jws(&r);
  rc = (r.p == r.e) ? 0 : -1;
done:
  azb_buf_free(&key);
  return rc;
}

/* }====================================================== */
