/*
** azb_text.c: text helpers every area uses and that use nothing else of
** the core: ASCII character classes and case, UTF-8, edit distance and
** "did you mean", quoting user input for messages, and the cleaning of
** strings that come from the network. A leaf: it includes only azb.h,
** calls no other azb_ function, and every other area may call it.
*/
#include <string.h>

#include "azb.h"


/*
** {======================================================
** ASCII character classes and case (the C library's follow the locale)
** =======================================================
*/

static int lower(int c) {
  return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

int azb_isdigit(int c) { return c >= '0' && c <= '9'; }

int azb_isalnum(int c) {
  return azb_isdigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int azb_isxdigit(int c) {
  return azb_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int azb_strnieq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
      return 0;
    if (a[i] == '\0')
      return 1;
  }
  return 1;
}

int azb_strieq(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (lower((unsigned char)*a) != lower((unsigned char)*b))
      return 0;
  return *a == *b;
}

int azb_strihas(const char *s, const char *word) {
  size_t n = strlen(word);
  for (; *s != '\0'; s++)
    if (azb_strnieq(s, word, n))
      return 1;
  return n == 0;
}

/* }====================================================== */


/*
** {======================================================
** UTF-8
** =======================================================
*/

/* Length of the well-formed sequence at s (RFC 3629), or 0. */
size_t azb_utf8_seq(const unsigned char *s, size_t left) {
  unsigned c = s[0];
  size_t n;
  unsigned cp;
  if (c < 0x80) return 1;
  else if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  if (left < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;   /* overlong, surrogate or beyond Unicode */
  return n;
}

int azb_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    size_t n = azb_utf8_seq(p + i, len - i);
    if (n == 0)
      return 0;
    i += n;
  }
  return 1;
}

size_t azb_utf8_len(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80)
      n++;
  return n;
}

/* }====================================================== */


/*
** {======================================================
** Edit distance
** =======================================================
*/

/*
** Case-insensitive optimal string alignment distance (Levenshtein plus
** adjacent swaps), for "did you mean". Returns 3 (no suggestion) early when
** the lengths alone differ by more than 2, or a name is over 64 bytes.
*/
#define TYPO_MAX 64
int azb_typo_distance(const char *a, size_t n, const char *b, size_t m) {
  int d[TYPO_MAX + 1][TYPO_MAX + 1];
  if (n > TYPO_MAX || m > TYPO_MAX || (n > m ? n - m : m - n) > 2)
    return 3;
  for (size_t i = 0; i <= n; i++)
    d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++)
    d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    int ai = lower((unsigned char)a[i - 1]);
    for (size_t j = 1; j <= m; j++) {
      int bj = lower((unsigned char)b[j - 1]);
      int best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + (ai != bj) < best) best = d[i - 1][j - 1] + (ai != bj);
      if (i > 1 && j > 1 && ai == lower((unsigned char)b[j - 2]) &&
          lower((unsigned char)a[i - 2]) == bj && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[n][m];
}

const char *azb_names_at(azb_names set, size_t i) {
  if (i >= set.count)
    return NULL;
  return *(const char *const *)(const void *)((const char *)set.first + i * set.stride);
}

/*
** A name differing only in case wins outright; otherwise the closest
** within 2 edits, and closer than the lengths of both ("x" is no typo of
** "id", nor "id" of "x").
*/
const char *azb_suggest_in(const char *k, size_t n, azb_names set) {
  const char *best = NULL, *name;
  int bestd = 3;
  for (size_t i = 0; (name = azb_names_at(set, i)) != NULL; i++) {
    size_t m = strlen(name);
    int d = azb_typo_distance(k, n, name, m);
    if (d == 0)
      return name;
    if (d < bestd && (size_t)d < m && (size_t)d < n) {
      bestd = d;
      best = name;
    }
  }
  return best;
}

const char *azb_suggest(const char *k, size_t n, const char *const *names) {
  return azb_suggest_in(k, n, AZB_NAMES(names));
}

/* }====================================================== */


/*
** {======================================================
** Quoting user input for messages
** =======================================================
*/

static unsigned code_point(const unsigned char *s, size_t n) {
  static const unsigned mask[5] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
  unsigned cp = s[0] & mask[n];
  for (size_t i = 1; i < n; i++)
    cp = (cp << 6) | (s[i] & 0x3F);
  return cp;
}

/*
** Code points that change how a terminal shows what follows: C1 controls
** (0x9B is CSI) and the bidirectional overrides and isolates that reorder
** text ("Trojan Source").
*/
static int invisible_control(unsigned cp) {
  return (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

/* ... and those a reader cannot see or that end a line: zero-width
** characters and marks, line and paragraph separators, the BOM. */
static int unseen(unsigned cp) {
  return invisible_control(cp) || (cp >= 0x200B && cp <= 0x200F) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x2060 || cp == 0xFEFF;
}

static void add_byte_escape(luaL_Buffer *b, unsigned char c) {
  char esc[4] = { '\\', (char)('0' + c / 100), (char)('0' + c / 10 % 10),
                  (char)('0' + c % 10) };
  luaL_addlstring(b, esc, 4);
}

/* \u{hex}: lua_pushfstring has no %x */
static void add_cp_escape(luaL_Buffer *b, unsigned cp) {
  static const char hex[] = "0123456789abcdef";
  int shift = 20;
  luaL_addstring(b, "\\u{");
  while (shift > 0 && (cp >> shift) == 0)
    shift -= 4;
  for (; shift >= 0; shift -= 4)
    luaL_addchar(b, hex[(cp >> shift) & 15]);
  luaL_addchar(b, '}');
}

const char *azb_text_pushquoted(lua_State *L, const char *s, size_t len,
                                char q) {
  const unsigned char *p = (const unsigned char *)s;
  luaL_Buffer b;
  size_t i = 0;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, q);
  while (i < len) {
    size_t n = azb_utf8_seq(p + i, len - i);
    unsigned char c = p[i];
    if (i + (n ? n : 1) > AZB_QUOTE_MAX) {
      luaL_addstring(&b, "...");
      break;
    }
    if (n == 0)
      add_byte_escape(&b, c);          /* not UTF-8 */
    else if (n > 1) {
      unsigned cp = code_point(p + i, n);
      if (unseen(cp))
        add_cp_escape(&b, cp);
      else
        luaL_addlstring(&b, s + i, n);
    }
    else if (c == (unsigned char)q || c == '\\') {
      luaL_addchar(&b, '\\');
      luaL_addchar(&b, (char)c);
    }
    else if (c == '\n') luaL_addstring(&b, "\\n");
    else if (c == '\r') luaL_addstring(&b, "\\r");
    else if (c == '\t') luaL_addstring(&b, "\\t");
    else if (c < 0x20 || c == 0x7F)
      add_byte_escape(&b, c);
    else
      luaL_addchar(&b, (char)c);
    i += n ? n : 1;
  }
  luaL_addchar(&b, q);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* }====================================================== */


/*
** {======================================================
** Strings from the network
** =======================================================
*/

size_t azb_text_clean(const char *s, size_t len, char *out, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0, cut = 0;   /* cut: last boundary with room for "..." */
  if (max < 4)
    max = 4;
  while (i < len) {
    size_t n = azb_utf8_seq(p + i, len - i);
    const char *put = (const char *)p + i;
    size_t putn = n;
    if (n == 0) {                       /* not UTF-8: one byte becomes '?' */
      put = "?";
      putn = n = 1;
    }
    else if (n == 1 && (p[i] < 0x20 || p[i] == 0x7F)) {
      /* CR, LF and tab become a space (one line); other controls,
      ** ESC included, are dropped */
      put = (p[i] == '\r' || p[i] == '\n' || p[i] == '\t') ? " " : "";
      putn = put[0] != '\0';
      if (putn && o > 0 && out[o - 1] == ' ')
        putn = 0;                       /* "\r\n" is one space, not two */
    }
    else if (n > 1 && invisible_control(code_point(p + i, n)))
      putn = 0;
    if (o + putn > max) {
      memcpy(out + cut, "...", 3);
      return cut + 3;
    }
    memcpy(out + o, put, putn);
    o += putn;
    if (o <= max - 3)
      cut = o;
    i += n;
  }
  return o;
}

/* core.sanitize(s [, max]) -> s cleaned for one line of a message */
static int text_sanitize(lua_State *L) {
  size_t len, n;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer max = luaL_optinteger(L, 2, AZB_TEXT_MAX);
  luaL_Buffer b;
  luaL_argcheck(L, max >= 4 && max <= 1 << 20, 2, "must be in [4, 1048576]");
  if (len <= (size_t)max) {   /* printable ASCII comes back as it is */
    size_t i = 0;
    while (i < len && s[i] >= 0x20 && s[i] < 0x7F)
      i++;
    if (i == len) {
      lua_settop(L, 1);
      return 1;
    }
  }
  /* the output is never longer than the input, nor than 'max' */
  n = len < (size_t)max ? len : (size_t)max;
  n = azb_text_clean(s, len, luaL_buffinitsize(L, &b, n), (size_t)max);
  luaL_pushresultsize(&b, n);
  return 1;
}

void azb_text_open(lua_State *L) {
  lua_pushcfunction(L, text_sanitize);
  lua_setfield(L, -2, "sanitize");
}

/* }====================================================== */
