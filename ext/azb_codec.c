/*
** azb_codec.c: byte encodings of the wire: base64 (via OpenSSL), URL
** percent-encoding (one encoder), RFC 1123 dates and v4 UUIDs, as pure C
** for the other areas and as small Lua functions.
*/
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "azb.h"


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

/* The one URL encoder: out holds 3 * n bytes; returns the length. */
size_t azb_url_encode_to(const char *s, size_t n, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c))
      out[o++] = (char)c;
    else {
      out[o++] = '%';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  return o;
}

int azb_url_encode(azb_buf *b, const char *s, size_t n) {
  char chunk[3 * 64];
  for (size_t i = 0; i < n; i += 64) {
    size_t k = n - i < 64 ? n - i : 64;
    azb_buf_add(b, chunk, azb_url_encode_to(s + i, k, chunk));
  }
  return b->oom ? -1 : 0;
}

int azb_hexval(int c) {
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
        (h = azb_hexval((unsigned char)s[i + 1])) >= 0 &&
        (l = azb_hexval((unsigned char)s[i + 2])) >= 0) {
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
** Lua functions
** =======================================================
*/

/* core.uuid() -> "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (RFC 4122 v4) */
static int codec_uuid(lua_State *L) {
  static const char hex[] = "0123456789abcdef";
  unsigned char r[16];
  char s[37];
  int o = 0;
  /* the kernel's generator: a request id needs uniqueness, and this costs
  ** a tenth of OpenSSL's locked DRBG, once per request */
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r &&
      RAND_bytes(r, sizeof r) != 1)
    return luaL_error(L, "uuid: the random generator failed");
  r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);   /* version 4 */
  r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);   /* RFC 4122 variant */
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      s[o++] = '-';
    s[o++] = hex[r[i] >> 4];
    s[o++] = hex[r[i] & 15];
  }
  lua_pushlstring(L, s, 36);
  return 1;
}

/* core.rfc1123([t]) -> "Mon, 01 Jan 2024 00:00:00 GMT" (t: epoch, default now) */
static int codec_rfc1123(lua_State *L) {
  char buf[32];
  double t = luaL_optnumber(L, 1, (double)time(NULL));
  /* years 0000..9999 keep the fixed-width format */
  luaL_argcheck(L, t >= -62167219200.0 && t < 253402300800.0, 1,
                "time out of range");
  azb_rfc1123(t, buf);
  lua_pushstring(L, buf);
  return 1;
}

/* core.url_encode(s) -> s with all but RFC 3986 unreserved bytes as %XX */
static int codec_url_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_argcheck(L, n < (size_t)-1 / 4, 1, "string too long");
  luaL_pushresultsize(&b, azb_url_encode_to(s, n, luaL_buffinitsize(L, &b, 3 * n)));
  return 1;
}

/* core.url_decode(s [, plus]) -> decoded s ('+' as space when plus) */
static int codec_url_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int plus = lua_toboolean(L, 2);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, n);
  luaL_pushresultsize(&b, azb_url_decode(s, n, out, plus));
  return 1;
}

/* core.base64_encode(s) -> base64 text */
static int codec_b64_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *out;
  luaL_argcheck(L, n < (size_t)INT32_MAX / 2, 1, "string too long");
  out = luaL_buffinitsize(L, &b, AZB_B64LEN(n) + 1);
  luaL_pushresultsize(&b, azb_b64_encode((const unsigned char *)s, n, out));
  return 1;
}

/* core.base64_decode(s) -> bytes, or fail (kind "validation") */
static int codec_b64_decode(lua_State *L) {
  size_t n, outn;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n / 4 * 3 + 1);
  if (azb_b64_decode(s, n, out, &outn) != 0)
    return azb_fail(L, "validation", NULL, "base64: not valid base64");
  luaL_pushresultsize(&b, outn);
  return 1;
}

static const luaL_Reg codec_funcs[] = {
  { "uuid", codec_uuid },
  { "rfc1123", codec_rfc1123 },
  { "url_encode", codec_url_encode },
  { "url_decode", codec_url_decode },
  { "base64_encode", codec_b64_encode },
  { "base64_decode", codec_b64_decode },
  { NULL, NULL }
};

void azb_codec_open(lua_State *L) {
  luaL_setfuncs(L, codec_funcs, 0);
}

/* }====================================================== */
