/*
** host_event.c: events in C memory, and their JSON lines.
** Pure C apart from host_event_copy, which reads a table and never raises
** (lua_next on a table we do not change, lua_to* on values of a known type).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host_event.h"

/* {======================================================
** Building
** ======================================================= */

static int str_dup(struct host_str *d, const char *s, size_t len) {
  d->p = malloc(len + 1);
  if (d->p == NULL) return -1;
  memcpy(d->p, s, len);
  d->p[len] = '\0';
  d->len = len;
  return 0;
}

int host_event_init(struct host_event *ev, const char *type, size_t len) {
  memset(ev, 0, sizeof *ev);
  return str_dup(&ev->type, type, len);
}

/* A new field with its key copied, or NULL. */
static struct host_field *add(struct host_event *ev, const char *key, size_t klen) {
  struct host_field *f;
  if (ev->n == ev->cap) {
    size_t cap = ev->cap ? 2 * ev->cap : 8;
    struct host_field *grown = realloc(ev->fields, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    ev->fields = grown;
    ev->cap = cap;
  }
  f = &ev->fields[ev->n];
  memset(f, 0, sizeof *f);
  if (str_dup(&f->key, key, klen) != 0) return NULL;
  f->kind = HOST_BOOL;   /* owns no string until the value is set */
  ev->n++;
  return f;
}

static int add_str(struct host_event *ev, const char *key, size_t klen, const char *s, size_t len) {
  struct host_field *f = add(ev, key, klen);
  if (f == NULL || str_dup(&f->v.s, s, len) != 0) return -1;
  f->kind = HOST_STR;
  return 0;
}

int host_event_str(struct host_event *ev, const char *key, const char *s, size_t len) {
  return add_str(ev, key, strlen(key), s, len);
}

int host_event_int(struct host_event *ev, const char *key, lua_Integer i) {
  struct host_field *f = add(ev, key, strlen(key));
  if (f == NULL) return -1;
  f->kind = HOST_INT;
  f->v.i = i;
  return 0;
}

int host_event_bool(struct host_event *ev, const char *key, int b) {
  struct host_field *f = add(ev, key, strlen(key));
  if (f == NULL) return -1;
  f->v.b = b != 0;
  return 0;
}

/* The keys the host writes itself. */
static int reserved(const char *key) {
  return strcmp(key, "type") == 0 || strcmp(key, "seq") == 0 || strcmp(key, "time") == 0;
}

int host_event_copy(struct host_event *ev, lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t klen;
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
    struct host_field *f;
    int r = 0;
    if (key != NULL && !reserved(key)) {
      switch (lua_type(L, -1)) {
        case LUA_TSTRING: {
          size_t len;
          const char *s = lua_tolstring(L, -1, &len);
          r = add_str(ev, key, klen, s, len);
          break;
        }
        case LUA_TNUMBER:
          if ((f = add(ev, key, klen)) == NULL) { r = -1; break; }
          if (lua_isinteger(L, -1)) { f->kind = HOST_INT; f->v.i = lua_tointeger(L, -1); }
          else { f->kind = HOST_NUM; f->v.n = lua_tonumber(L, -1); }
          break;
        case LUA_TBOOLEAN:
          if ((f = add(ev, key, klen)) == NULL) { r = -1; break; }
          f->v.b = lua_toboolean(L, -1);
          break;
        default:   /* tables, functions, userdata: not an event's business */
          break;
      }
    }
    lua_pop(L, 1);
    if (r != 0) {
      lua_pop(L, 1);   /* the key */
      return -1;
    }
  }
  return 0;
}

void host_event_free(struct host_event *ev) {
  size_t i;
  for (i = 0; i < ev->n; i++) {
    free(ev->fields[i].key.p);
    if (ev->fields[i].kind == HOST_STR) free(ev->fields[i].v.s.p);
  }
  free(ev->fields);
  free(ev->type.p);
  memset(ev, 0, sizeof *ev);
}

const struct host_field *host_event_get(const struct host_event *ev, const char *key) {
  size_t i;
  for (i = 0; i < ev->n; i++)
    if (strcmp(ev->fields[i].key.p, key) == 0) return &ev->fields[i];
  return NULL;
}

/* }====================================================== */

/* {======================================================
** Writing
** ======================================================= */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  size_t len, i;
  unsigned long cp;
  if (s[0] < 0xC2 || s[0] > 0xF4) return 0;
  len = s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
  if (len > n) return 0;
  cp = s[0] & (0x7Fu >> len);
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* Length of the secret that starts at s, or 0. */
static size_t secret_at(const char *s, size_t n, const char *const *secrets) {
  for (; secrets != NULL && *secrets != NULL; secrets++) {
    size_t len = strlen(*secrets);
    if (len > 0 && len <= n && memcmp(s, *secrets, len) == 0) return len;
  }
  return 0;
}

static void put_text(FILE *f, const char *s, size_t len, const char *const *secrets, int json) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    size_t n = secret_at(s + i, len - i, secrets);
    if (n > 0) {
      fputs("***", f);
      i += n;
    }
    else if (!json || (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')) {
      putc(c, f);
      i++;
    }
    else if (c == '"' || c == '\\') {
      putc('\\', f);
      putc(c, f);
      i++;
    }
    else if (c == '\n') { fputs("\\n", f); i++; }
    else if (c == '\t') { fputs("\\t", f); i++; }
    else if (c < 0x20) { fprintf(f, "\\u%04x", c); i++; }
    else if ((n = utf8_len((const unsigned char *)s + i, len - i)) > 0) {
      fwrite(s + i, 1, n, f);
      i += n;
    }
    else {
      fputs("\\ufffd", f);   /* not UTF-8: JSON cannot carry the byte */
      i++;
    }
  }
}

void host_json_str(FILE *f, const char *s, size_t len, const char *const *secrets) {
  putc('"', f);
  put_text(f, s, len, secrets, 1);
  putc('"', f);
}

void host_write_redacted(FILE *f, const char *s, size_t len, const char *const *secrets) {
  put_text(f, s, len, secrets, 0);
}

void host_json_head(FILE *f, unsigned long seq, const struct timespec *when,
                    const char *type, size_t len, const char *const *secrets) {
  struct tm tm;
  char stamp[32];
  time_t sec = when->tv_sec;
  gmtime_r(&sec, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  fprintf(f, "{\"seq\":%lu,\"time\":\"%s.%03ldZ\",\"type\":", seq, stamp, when->tv_nsec / 1000000);
  host_json_str(f, type, len, secrets);
}

/* The shortest form that reads back as the same double. */
static void put_number(FILE *f, lua_Number x) {
  char s[40];
  int prec = 15;
  if (!isfinite(x)) {
    fputs("null", f);   /* JSON has no NaN or infinity */
    return;
  }
  do snprintf(s, sizeof s, "%.*g", prec, (double)x);
  while (strtod(s, NULL) != (double)x && ++prec <= 17);
  fputs(s, f);
}

static int by_key(const void *a, const void *b) {
  const struct host_field *x = *(const struct host_field *const *)a;
  const struct host_field *y = *(const struct host_field *const *)b;
  size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
  int c = memcmp(x->key.p, y->key.p, n);
  return c != 0 ? c : (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

int host_event_write(FILE *f, const struct host_event *ev, unsigned long seq,
                     const struct timespec *when, const char *const *secrets) {
  const struct host_field **order = malloc((ev->n ? ev->n : 1) * sizeof *order);
  size_t i;
  if (order == NULL) return -1;
  for (i = 0; i < ev->n; i++) order[i] = &ev->fields[i];
  /* table order is arbitrary; sorted keys make lines comparable */
  qsort(order, ev->n, sizeof *order, by_key);
  host_json_head(f, seq, when, ev->type.p, ev->type.len, secrets);
  for (i = 0; i < ev->n; i++) {
    const struct host_field *fl = order[i];
    putc(',', f);
    host_json_str(f, fl->key.p, fl->key.len, secrets);
    putc(':', f);
    switch (fl->kind) {
      case HOST_STR: host_json_str(f, fl->v.s.p, fl->v.s.len, secrets); break;
      case HOST_INT: fprintf(f, LUA_INTEGER_FMT, (LUAI_UACINT)fl->v.i); break;
      case HOST_NUM:
        put_number(f, fl->v.n);
        break;
      case HOST_BOOL: fputs(fl->v.b ? "true" : "false", f); break;
    }
  }
  fputs("}\n", f);
  free(order);
  return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

/* }====================================================== */
