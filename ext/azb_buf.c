/*
** azb_buf.c: the growable byte buffer libcurl callbacks append into,
** and the other byte-level helpers of the network areas (base64, URL
** encoding, RFC 1123 dates, JSON members). Pure C: nothing here calls
** Lua or raises, so all of it is safe inside callbacks and easy to fuzz;
** an allocation failure is remembered in 'oom' and reported by whoever
** materialises the buffer later.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "azb.h"

/*
** {======================================================
** Buffer
** =======================================================
*/

void azb_buf_init(azb_buf *b) {
  b->p = NULL;
  b->n = b->cap = 0;
  b->oom = 0;
}

/* Make room for n more bytes plus the NUL terminator. */
static int reserve(azb_buf *b, size_t n) {
  size_t need, cap;
  char *p;
  if (b->oom)
    return -1;
  if (n >= (size_t)-1 - b->n - 1) {   /* overflow */
    b->oom = 1;
    return -1;
  }
  need = b->n + n + 1;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap = (cap > (size_t)-1 / 2) ? need : cap * 2;
  p = realloc(b->p, cap);
  if (p == NULL) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

int azb_buf_add(azb_buf *b, const void *s, size_t n) {
  if (reserve(b, n) != 0)
    return -1;
  if (n > 0)
    memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

int azb_buf_adds(azb_buf *b, const char *s) {
  return azb_buf_add(b, s, strlen(s));
}

int azb_buf_addc(azb_buf *b, int c) {
  char ch = (char)c;
  return azb_buf_add(b, &ch, 1);
}

void azb_buf_reset(azb_buf *b) {
  b->n = 0;
  b->oom = 0;
  if (b->p != NULL)
    b->p[0] = '\0';
}

void azb_buf_free(azb_buf *b) {
  free(b->p);
  azb_buf_init(b);
}

/* For buffers that held secrets: the whole capacity, not just n bytes. */
void azb_buf_wipe(azb_buf *b) {
  if (b->p != NULL)
    OPENSSL_cleanse(b->p, b->cap);
  azb_buf_free(b);
}

/* Returning less than asked makes libcurl fail with CURLE_WRITE_ERROR. */
size_t azb_buf_write(char *data, size_t size, size_t nmemb, void *ud) {
  azb_buf *b = (azb_buf *)ud;
  size_t n = size * nmemb;
  if (azb_buf_add(b, data, n) != 0)
    return 0;
  return n;
}

/* }====================================================== */


/*
** {======================================================
** Base64, URL encoding, dates
** =======================================================
*/

size_t azb_b64_encode(const unsigned char *in, size_t n, char *out) {
  if (n == 0) {
    out[0] = '\0';
    return 0;
  }
  return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64char(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
** EVP_DecodeBlock skips blanks and counts '=' as zero bytes, so check the
** shape first and take the padding off the length it returns.
*/
int azb_b64_decode(const char *in, size_t n, unsigned char *out,
                   size_t *outn) {
  size_t pad = 0;
  int r;
  if (n % 4 != 0 || n > (size_t)INT32_MAX)
    return -1;
  if (n > 0 && in[n - 1] == '=')
    pad = (n > 1 && in[n - 2] == '=') ? 2 : 1;
  for (size_t i = 0; i < n - pad; i++)
    if (!b64char((unsigned char)in[i]))
      return -1;
  if (n == 0) {
    *outn = 0;
    return 0;
  }
  r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
  if (r < 0 || (size_t)r < pad)
    return -1;
  *outn = (size_t)r - pad;
  return 0;
}

static int unreserved(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

int azb_url_encode(azb_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c))
      azb_buf_addc(b, c);
    else {
      char e[3] = { '%', hex[c >> 4], hex[c & 15] };
      azb_buf_add(b, e, 3);
    }
  }
  return b->oom ? -1 : 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A '%' not followed by two hex digits is kept as it is. */
size_t azb_url_decode(const char *s, size_t n, char *out, int plus) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int h, l;
    if (s[i] == '%' && i + 2 < n &&
        (h = hexval((unsigned char)s[i + 1])) >= 0 &&
        (l = hexval((unsigned char)s[i + 2])) >= 0) {
      out[o++] = (char)(h * 16 + l);
      i += 2;
    }
    else if (plus && s[i] == '+')
      out[o++] = ' ';
    else
      out[o++] = s[i];
  }
  return o;
}

void azb_rfc1123(double t, char *out) {
  static const char days[7][4] =
    { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
  static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  struct tm tm;
  time_t tt = (time_t)floor(t);
  memset(&tm, 0, sizeof tm);
  gmtime_r(&tt, &tm);
  /* by hand: strftime's %a and %b follow the locale */
  snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT",
           days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* }====================================================== */


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
    int h = hexval((unsigned char)p[i]);
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
  if ((size_t)(r->p - s) >= sizeof tmp)
    *v = NAN;   /* valid JSON, too long to matter here */
  else {
    memcpy(tmp, s, (size_t)(r->p - s));
    tmp[r->p - s] = '\0';
    *v = strtod(tmp, NULL);
  }
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
